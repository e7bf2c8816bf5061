/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What etcd's JSON gateway reads and writes, as pure functions: the endpoint lists, the
 * base64 in which it carries keys and values (Go's encoding/json: the standard alphabet,
 * padded; a few lines of our own, Debian has no small library worth a dependency for it),
 * range ends, and its error bodies. No state and no I/O: etcd.c is the client.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "etcd-codec.h"

/* "http[s]://host[:port]" with nothing after it but an optional slash. */
static int endpoint_check(const char *url) {
        CURLU *u = curl_url();
        char *scheme = NULL, *host = NULL, *path = NULL, *query = NULL, *fragment = NULL;
        int r = -EINVAL;

        if (!u)
                return -ENOMEM;
        if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
            curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
            curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
            curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK &&
            curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_NO_QUERY &&
            curl_url_get(u, CURLUPART_FRAGMENT, &fragment, 0) == CURLUE_NO_FRAGMENT &&
            (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0) &&
            host[0] && (path[0] == '\0' || strcmp(path, "/") == 0))
                r = 0;
        curl_free(scheme);
        curl_free(host);
        curl_free(path);
        curl_free(query);
        curl_free(fragment);
        curl_url_cleanup(u);
        return r;
}

void etcd_endpoints_free(char **endpoints, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(endpoints[i]);
        free(endpoints);
}

int etcd_endpoints_parse(const char *list, char ***ret, size_t *ret_n) {
        char **v = NULL;
        size_t n = 0;
        int r;

        if (!list || !ret || !ret_n)
                return -EINVAL;
        for (const char *p = list;; p++) {
                size_t len = strcspn(p, ","), skip = strspn(p, " \t");
                char *url, **a;

                while (len > skip && (p[len - 1] == ' ' || p[len - 1] == '\t'))
                        len--;
                url = len > skip ? strndup(p + skip, len - skip) : NULL;
                if (!url) {
                        r = len > skip ? -ENOMEM : -EINVAL;
                        goto fail;
                }
                while (strlen(url) > 1 && url[strlen(url) - 1] == '/')
                        url[strlen(url) - 1] = '\0';
                /* '@' has no place in a host or port: user information, which would put
                 * a password on the command line and in every message naming the URL. */
                r = strchr(url, '@') ? -EPERM : endpoint_check(url);
                a = r < 0 ? NULL : realloc(v, (n + 1) * sizeof *a);
                if (!a) {
                        free(url);
                        r = r < 0 ? r : -ENOMEM;
                        goto fail;
                }
                v = a;
                v[n++] = url;
                p += strcspn(p, ",");
                if (*p == '\0')
                        break;
        }
        *ret = v;
        *ret_n = n;
        return 0;
fail:
        etcd_endpoints_free(v, n);
        return r;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char pad = '=';

char *etcd_base64(const void *data, size_t len) {
        const unsigned char *p = data;
        size_t j = 0;
        char *s;

        if (len > SIZE_MAX / 4 * 3 - 3)
                return NULL;
        s = malloc((len + 2) / 3 * 4 + 1);
        if (!s)
                return NULL;
        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t) p[i] << 16;

                if (i + 1 < len)
                        v |= (uint32_t) p[i + 1] << 8;
                if (i + 2 < len)
                        v |= p[i + 2];
                s[j++] = b64[v >> 18 & 63];
                s[j++] = b64[v >> 12 & 63];
                s[j++] = b64[v >> 6 & 63];
                s[j++] = b64[v & 63];
        }
        if (len % 3 > 0)                 /* 1 byte left: two '=', 2 bytes: one */
                s[j - 1] = pad;
        if (len % 3 == 1)
                s[j - 2] = pad;
        s[j] = '\0';
        return s;
}

/* The value of base64 digit CH, or -1. */
static int b64_value(char ch) {
        const char *p = ch ? strchr(b64, ch) : NULL;

        return p ? (int) (p - b64) : -1;
}

int etcd_unbase64(const char *text, char **ret, size_t *ret_len) {
        size_t n, pads = 0, len = 0;
        char *buf;

        if (!text || !ret)
                return -EINVAL;
        n = strlen(text);
        if (n % 4 != 0)
                return -EINVAL;
        if (n > 0 && text[n - 1] == pad)
                pads = n > 1 && text[n - 2] == pad ? 2 : 1;
        buf = malloc(n / 4 * 3 + 1);
        if (!buf)
                return -ENOMEM;
        for (size_t i = 0; i < n; i += 4) {
                bool last = i + 4 == n;
                int v[4];

                for (size_t k = 0; k < 4; k++) {
                        v[k] = b64_value(text[i + k]);
                        if (v[k] >= 0)
                                continue;
                        if (!last || text[i + k] != pad || k < 4 - pads) {
                                free(buf);
                                return -EINVAL;
                        }
                        v[k] = 0;               /* padding: its bits are not used */
                }
                buf[len++] = (char) (v[0] << 2 | v[1] >> 4);
                if (!last || pads < 2)
                        buf[len++] = (char) ((v[1] & 15) << 4 | v[2] >> 2);
                if (!last || pads < 1)
                        buf[len++] = (char) ((v[2] & 3) << 6 | v[3]);
        }
        buf[len] = '\0';
        *ret = buf;
        if (ret_len)
                *ret_len = len;
        return 0;
}

char *etcd_prefix_end_base64(const char *prefix) {
        size_t n = prefix ? strlen(prefix) : 0;
        unsigned char *end;
        char *s;

        /* As clientv3.GetPrefixRangeEnd: the prefix with its last byte below 0xff raised
         * by one and what follows cut off; "\0" (every key from the prefix on) when no
         * byte can be raised. */
        while (n > 0 && (unsigned char) prefix[n - 1] == 0xff)
                n--;
        if (n == 0)
                return etcd_base64("", 1);
        end = malloc(n);
        if (!end)
                return NULL;
        memcpy(end, prefix, n);
        end[n - 1]++;
        s = etcd_base64(end, n);
        free(end);
        return s;
}

int etcd_endpoints_check(const char *endpoints) {
        char **v = NULL;
        size_t n = 0;
        int r;

        if (!endpoints)
                return -EINVAL;
        r = etcd_endpoints_parse(endpoints, &v, &n);
        etcd_endpoints_free(v, n);
        return r;
}

bool etcd_error_needs_token(const char *text) {
        /* etcd's words (server/auth): an expired or unknown token, none at all, or one
         * issued before the users or roles changed. */
        return text && (strstr(text, "invalid auth token") || strstr(text, "user name is empty") ||
                        strstr(text, "revision of auth store is old"));
}

/* Maps an etcd error answer ({"error": text, "code": N, "message": text}, or a stream's
 * {"error": {"grpc_code": N, "message": text}}) to an errno; 1 when O carries none. */
int etcd_error_from_json(json_object *o, const char **ret_text, bool *ret_unavailable) {
        json_object *err, *code = NULL, *msg = NULL;
        int64_t grpc;

        *ret_unavailable = false;
        if (!json_object_is_type(o, json_type_object) ||
            !json_object_object_get_ex(o, "error", &err))
                return 1;
        if (json_object_is_type(err, json_type_object)) {
                (void) json_object_object_get_ex(err, "grpc_code", &code);
                (void) json_object_object_get_ex(err, "message", &msg);
        } else {
                (void) json_object_object_get_ex(o, "code", &code);
                if (!json_object_object_get_ex(o, "message", &msg))
                        msg = err;
        }
        *ret_text = json_object_get_string(msg);
        if (!*ret_text || !**ret_text)
                *ret_text = "etcd answered an error without a message";
        grpc = code ? json_object_get_int64(code) : 2;
        *ret_unavailable = grpc == 14;
        return grpc == 14 ? -EHOSTUNREACH : grpc == 7 || grpc == 16 ? -EACCES :
                grpc == 8 ? -ENOSPC : grpc == 5 ? -ENOENT : grpc == 3 ? -EINVAL :
                grpc == 4 ? -ETIMEDOUT : -EIO;
}
