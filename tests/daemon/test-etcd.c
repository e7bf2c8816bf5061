/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * daemon/etcd.c against a real etcd (Debian's /usr/bin/etcd) on free loopback ports with
 * a scratch data directory, through a real sd-event loop. etcd is started once for the
 * test case, in the runner, by the tests' launcher (tests/common/etcd-launch.h), and
 * killed by its PID in the teardown (and with the runner, should it die first). The dead endpoint is a bound socket that
 * does not listen (connection refused); the silent one listens and never answers. A
 * second etcd, with TLS, client certificates and authentication (certificates by openssl,
 * users by etcdctl), serves the token renewal's test.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "etcd-launch.h"
#include "etcd.h"
#include "time-util.h"

#define ETCD_BIN "/usr/bin/etcd"
#define ETCDCTL_BIN "/usr/bin/etcdctl"
#define OPENSSL_BIN "/usr/bin/openssl"
#define T_USEC (60ULL * 1000 * 1000)    /* a generous bound for anything to happen */

static char dir[] = "/tmp/test-etcd-XXXXXX";
static struct etcd_launch plain;
static char live[256], dead[64], dead2[64], silent[64];
static int dead_fd = -1, dead2_fd = -1, silent_fd = -1;

static sd_event *loop;
static Etcd *etcd;
static bool inside_call;                 /* set around etcd_call() and etcd_watch() */

/* A loopback socket on a free port, listening or not; its URL in URL. */
static int reserve_port(bool listening, char *url, size_t size) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof sa;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
        ck_assert_int_eq(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
        if (listening)
                ck_assert_int_eq(listen(fd, 16), 0);
        (void) snprintf(url, size, "http://127.0.0.1:%u", ntohs(sa.sin_port));
        return fd;
}

static void start_etcd(void) {
        ck_assert_ptr_nonnull(mkdtemp(dir));
        ck_assert_int_eq(etcd_launch(&plain, dir, 1, NULL), 0);
        (void) snprintf(live, sizeof live, "%s", plain.endpoints);
        dead_fd = reserve_port(false, dead, sizeof dead);
        dead2_fd = reserve_port(false, dead2, sizeof dead2);
        silent_fd = reserve_port(true, silent, sizeof silent);
}

static void stop_etcd(void) {
        char cmd[128];

        etcd_launch_stop(&plain);
        (void) close(dead_fd);
        (void) close(dead2_fd);
        (void) close(silent_fd);
        (void) snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (strncmp(dir, "/tmp/test-etcd-", 15) == 0 && !strstr(dir, "XXXXXX"))
                (void) !system(cmd);
}

/* The secured etcd: https with a private CA, --client-cert-auth, users, 2 s tokens. */
static char sdir[] = "/tmp/test-etcd-tls-XXXXXX";
static struct etcd_launch secured;
static char secure[256], slog[96], ca_file[96], cert_file[96], key_file[96];

static void sh(const char *format, ...) {
        va_list ap;
        char *cmd;
        int r;

        va_start(ap, format);
        r = vasprintf(&cmd, format, ap);
        va_end(ap);
        ck_assert_int_ge(r, 0);
        r = system(cmd);
        ck_assert_msg(r == 0, "failed (%d): %s", r, cmd);
        free(cmd);
}

/* How many lines of etcd's log PATH contain NEEDLE. */
static unsigned log_count(const char *path, const char *needle) {
        FILE *f = fopen(path, "re");
        char line[8192];
        unsigned n = 0;

        ck_assert_ptr_nonnull(f);
        while (fgets(line, sizeof line, f))
                n += strstr(line, needle) != NULL;
        (void) fclose(f);
        return n;
}

static void start_secure_etcd(void) {
        char server_crt[96], server_key[96], ectl[320];
        int r;

        ck_assert_ptr_nonnull(mkdtemp(sdir));
        sh("cd '%s' && " OPENSSL_BIN " req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
           "-nodes -days 2 -keyout ca.key -out ca.crt -subj /O=t/OU=ca 2>/dev/null && "
           "printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\n' "
           ">server.ext && printf 'extendedKeyUsage=clientAuth\\n' >client.ext && "
           "for n in server client; do " OPENSSL_BIN " req -new -newkey ec -pkeyopt "
           "ec_paramgen_curve:P-256 -nodes -keyout $n.key -out $n.csr -subj /O=t/OU=$n "
           "2>/dev/null && " OPENSSL_BIN " x509 -req -in $n.csr -CA ca.crt -CAkey ca.key "
           "-CAcreateserial -days 2 -extfile $n.ext -out $n.crt 2>/dev/null || exit 1; done",
           sdir);
        (void) snprintf(ca_file, sizeof ca_file, "%s/ca.crt", sdir);
        (void) snprintf(cert_file, sizeof cert_file, "%s/client.crt", sdir);
        (void) snprintf(key_file, sizeof key_file, "%s/client.key", sdir);
        (void) snprintf(slog, sizeof slog, "%s/etcd-m0.log", sdir);
        (void) snprintf(server_crt, sizeof server_crt, "%s/server.crt", sdir);
        (void) snprintf(server_key, sizeof server_key, "%s/server.key", sdir);
        (void) snprintf(ectl, sizeof ectl, "--cacert %s --cert %s --key %s", ca_file, cert_file,
                        key_file);
        ck_assert_int_eq(setenv("ETCD_SCHEME", "https", 1), 0);
        ck_assert_int_eq(setenv("ETCD_LAUNCH_ECTL", ectl, 1), 0);
        /* debug: etcd logs each authentication ("authenticated a user") */
        r = etcd_launch(&secured, sdir, 1, (const char *[]) {
                        "--cert-file", server_crt, "--key-file", server_key,
                        "--trusted-ca-file", ca_file, "--client-cert-auth",
                        "--auth-token-ttl", "2", "--log-level", "debug", NULL });
        (void) unsetenv("ETCD_SCHEME");
        (void) unsetenv("ETCD_LAUNCH_ECTL");
        ck_assert_int_eq(r, 0);
        (void) snprintf(secure, sizeof secure, "%s", secured.endpoints);
        /* root, and user hc whose role may use /t/ */
        sh("E='" ETCDCTL_BIN " --endpoints %s --cacert %s --cert %s --key %s'; "
           "{ echo rootpw | $E user add root --interactive=false && $E role add root && "
           "$E user grant-role root root && $E role add t && "
           "$E role grant-permission t --prefix=true readwrite /t/ && "
           "echo hcpw | $E user add hc --interactive=false && $E user grant-role hc t && "
           "$E auth enable; } >%s/etcdctl.log 2>&1",
           secure, ca_file, cert_file, key_file, sdir);
}

static void stop_secure_etcd(void) {
        char cmd[128];

        etcd_launch_stop(&secured);
        (void) snprintf(cmd, sizeof cmd, "rm -rf '%s'", sdir);
        if (strncmp(sdir, "/tmp/test-etcd-tls-", 19) == 0 && !strstr(sdir, "XXXXXX"))
                (void) !system(cmd);
}

static void setup(void) {
        ck_assert_int_ge(sd_event_new(&loop), 0);
        ck_assert_int_eq(etcd_new(loop, &(EtcdConfig) { .endpoints = live,
                                                         .timeout_usec = 30ULL * 1000 * 1000 }, &etcd), 0);
}

static void teardown(void) {
        etcd = etcd_free(etcd);
        loop = sd_event_unref(loop);
}

struct result {
        unsigned calls;
        int r;
        json_object *reply;
        char error[1024];
};

static void result_clear(struct result *res) {
        json_object_put(res->reply);
        *res = (struct result) {};
}

static void on_result(Etcd *e, int r, json_object *reply, const char *error, void *userdata) {
        struct result *res = userdata;

        ck_assert_msg(!inside_call, "called back from inside etcd_call()");
        res->calls++;
        res->r = r;
        json_object_put(res->reply);
        res->reply = json_object_get(reply);
        (void) snprintf(res->error, sizeof res->error, "%s", error ?: "");
        ck_assert_int_eq(r < 0, reply == NULL);
        ck_assert_int_eq(r < 0, error != NULL);
}

/* Runs the loop until *CALLS is at least N. */
static void run_until(const unsigned *calls, unsigned n) {
        uint64_t deadline = now_usec() + T_USEC;

        while (*calls < n) {
                ck_assert_msg(now_usec() < deadline, "nothing happened in time");
                ck_assert_int_ge(sd_event_run(loop, 100 * 1000), 0);
        }
}

static EtcdCall *start(Etcd *e, const char *path, const char *request, struct result *res) {
        json_object *o = json_tokener_parse(request);
        EtcdCall *c = NULL;

        ck_assert_ptr_nonnull(o);
        inside_call = true;
        ck_assert_int_eq(etcd_call(e, path, o, on_result, res, &c), 0);
        inside_call = false;
        json_object_put(o);
        return c;
}

/* Calls PATH with REQUEST on E and waits for the answer in RES. */
static void call(Etcd *e, const char *path, const char *request, struct result *res) {
        result_clear(res);
        (void) start(e, path, request, res);
        run_until(&res->calls, 1);
        ck_assert_uint_eq(res->calls, 1);
}

static const char *get_str(json_object *o, const char *key) {
        json_object *v;

        ck_assert_msg(json_object_object_get_ex(o, key, &v), "no \"%s\" in %s", key,
                      json_object_to_json_string(o));
        return json_object_get_string(v);
}

/* Malformed endpoints are refused before anything is sent. */
START_TEST(test_etcd_new_endpoints)
{
        static const char *const bad[] = { "", "foo", "http://", ",", "http://a,,http://b",
                                           "ftp://a:1", "http://a:1/v3", "http://a:1?x" };
        sd_event *ev;
        Etcd *e = NULL;

        ck_assert_int_ge(sd_event_new(&ev), 0);
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                ck_assert_msg(etcd_new(ev, &(EtcdConfig) { .endpoints = bad[i], .timeout_usec = 1000 },
                                       &e) == -EINVAL, "'%s' taken", bad[i]);
        ck_assert_ptr_null(e);
        ck_assert_int_eq(etcd_new(ev, &(EtcdConfig) { .endpoints = "http://127.0.0.1:2379/, https://b:1",
                                                      .timeout_usec = 1000 }, &e), 0);
        ck_assert_str_eq(etcd_endpoint(e), "http://127.0.0.1:2379");
        e = etcd_free(e);
        /* a password has no place in a URL: refused, whether the URL is valid or not */
        ck_assert_int_eq(etcd_endpoints_check("https://u:secret@a:1"), -EPERM);
        ck_assert_int_eq(etcd_endpoints_check("http://a:1,u:secret@b/x?"), -EPERM);
        ck_assert_int_eq(etcd_endpoints_check("https://a:1,http://b:2"), 0);
        ck_assert_int_eq(etcd_new(ev, &(EtcdConfig) { .endpoints = "https://a:1", .timeout_usec = 1000,
                                                      .user = "u" }, &e), -EINVAL);
        ck_assert_int_eq(etcd_new(ev, &(EtcdConfig) { .endpoints = "https://a:1", .timeout_usec = 1000,
                                                      .key = "k.pem" }, &e), -EINVAL);
        ck_assert(etcd_error_needs_token("etcdserver: invalid auth token"));
        ck_assert(etcd_error_needs_token("rpc error: code = InvalidArgument desc = etcdserver: user name is empty"));
        ck_assert(!etcd_error_needs_token("etcdserver: permission denied"));
        ck_assert(!etcd_error_needs_token(NULL));
        ck_assert_ptr_null(etcd_free(NULL));
        ck_assert_ptr_null(etcd_call_cancel(NULL));
        sd_event_unref(ev);
}
END_TEST

/* Base64 as etcd's Go encoding/json writes it, and the prefix's range end as
 * clientv3.GetPrefixRangeEnd computes it. */
START_TEST(test_etcd_base64)
{
        static const char *const invalid[] = { "a", "abc", "ab=c", "a===", "****", "ab\ncd==" };
        const unsigned char bytes[] = { 0, 0xff, 0x10, 'a', 0x80, 0 };
        char *s, *d;
        size_t n;

        for (size_t len = 0; len <= sizeof bytes; len++) {
                s = etcd_base64(bytes, len);
                ck_assert_ptr_nonnull(s);
                ck_assert_uint_eq(strlen(s), (len + 2) / 3 * 4);
                ck_assert_int_eq(etcd_unbase64(s, &d, &n), 0);
                ck_assert_uint_eq(n, len);
                ck_assert_int_eq(memcmp(d, bytes, len), 0);
                ck_assert_int_eq(d[n], 0);
                free(s);
                free(d);
        }
        s = etcd_base64("foo", 3);
        ck_assert_str_eq(s, "Zm9v");
        free(s);
        s = etcd_base64("fo", 2);
        ck_assert_str_eq(s, "Zm8=");
        free(s);
        for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
                ck_assert_msg(etcd_unbase64(invalid[i], &d, &n) == -EINVAL, "'%s'", invalid[i]);

        s = etcd_prefix_end_base64("/hc/");
        ck_assert_str_eq(s, "L2hjMA==");               /* "/hc0" */
        free(s);
        s = etcd_prefix_end_base64("a\xff\xff");
        ck_assert_str_eq(s, "Yg==");                   /* "b" */
        free(s);
        s = etcd_prefix_end_base64("\xff");
        ck_assert_str_eq(s, "AA==");                   /* "\0": every key */
        free(s);
        s = etcd_prefix_end_base64("");
        ck_assert_str_eq(s, "AA==");
        free(s);
}
END_TEST

/* A put is read back by a range, and a transaction's compare decides between its
 * branches. */
START_TEST(test_etcd_put_range_txn)
{
        struct result res = {};
        json_object *kvs, *kv;

        call(etcd, "/v3/kv/put", "{\"key\":\"dC9h\",\"value\":\"MQ==\"}", &res);  /* t/a = 1 */
        ck_assert_int_eq(res.r, 0);
        ck_assert_int_gt(json_object_get_int64(json_object_object_get(
                json_object_object_get(res.reply, "header"), "revision")), 0);

        call(etcd, "/v3/kv/range", "{\"key\":\"dC9h\"}", &res);
        ck_assert_int_eq(res.r, 0);
        ck_assert_int_eq(json_object_get_int64(json_object_object_get(res.reply, "count")), 1);
        kvs = json_object_object_get(res.reply, "kvs");
        ck_assert_uint_eq(json_object_array_length(kvs), 1);
        kv = json_object_array_get_idx(kvs, 0);
        ck_assert_str_eq(get_str(kv, "value"), "MQ==");

        /* create t/b only where it does not exist: the first time, not the second */
        for (int i = 0; i < 2; i++) {
                json_object *ok;

                call(etcd, "/v3/kv/txn",
                     "{\"compare\":[{\"key\":\"dC9i\",\"target\":\"CREATE\",\"result\":\"EQUAL\","
                     "\"create_revision\":\"0\"}],"
                     "\"success\":[{\"request_put\":{\"key\":\"dC9i\",\"value\":\"Mg==\"}}]}", &res);
                ck_assert_int_eq(res.r, 0);
                ok = json_object_object_get(res.reply, "succeeded");
                ck_assert_int_eq(json_object_get_boolean(ok), i == 0);
        }
        result_clear(&res);
}
END_TEST

/* A lease is granted and kept alive by a unary keepalive; etcd's refusals are mapped to
 * errno with etcd's own message, and a non-JSON answer is -EINVAL. */
START_TEST(test_etcd_lease_and_errors)
{
        struct result res = {};
        json_object *result;
        char request[128], id[32];

        call(etcd, "/v3/lease/grant", "{\"TTL\":\"30\"}", &res);
        ck_assert_int_eq(res.r, 0);
        ck_assert_int_eq(json_object_get_int64(json_object_object_get(res.reply, "TTL")), 30);
        (void) snprintf(id, sizeof id, "%s", get_str(res.reply, "ID"));

        (void) snprintf(request, sizeof request, "{\"ID\":\"%s\"}", id);
        call(etcd, "/v3/lease/keepalive", request, &res);
        ck_assert_int_eq(res.r, 0);
        ck_assert(json_object_object_get_ex(res.reply, "result", &result));
        ck_assert_str_eq(get_str(result, "ID"), id);
        ck_assert_int_eq(json_object_get_int64(json_object_object_get(result, "TTL")), 30);

        /* keepalive of a lease that is gone: TTL 0, no error (etcd's way) */
        call(etcd, "/v3/lease/keepalive", "{\"ID\":\"12345\"}", &res);
        ck_assert_int_eq(res.r, 0);
        ck_assert(json_object_object_get_ex(res.reply, "result", &result));
        ck_assert_int_eq(json_object_get_int64(json_object_object_get(result, "TTL")), 0);

        call(etcd, "/v3/kv/put", "{\"key\":\"dC9j\",\"value\":\"MQ==\",\"lease\":\"12345\"}", &res);
        ck_assert_int_eq(res.r, -ENOENT);
        ck_assert_str_eq(res.error, "etcdserver: requested lease not found");

        call(etcd, "/v3/kv/range", "{\"key\":5}", &res);
        ck_assert_int_eq(res.r, -EINVAL);
        ck_assert_str_ne(res.error, "");

        call(etcd, "/v3/no/such/path", "{}", &res);
        ck_assert_int_eq(res.r, -EINVAL);
        ck_assert_ptr_nonnull(strstr(res.error, live));
        result_clear(&res);
}
END_TEST

struct watch {
        unsigned messages, ends;
        bool created, deleted, canceled;
        int r;
        char error[1024];
};

static void on_watch(Etcd *e, int r, json_object *message, const char *error, void *userdata) {
        struct watch *w = userdata;
        json_object *events, *type;

        ck_assert_msg(!inside_call, "called back from inside etcd_watch()");
        ck_assert_uint_eq(w->ends, 0);
        if (!message) {
                w->ends++;
                w->r = r;
                (void) snprintf(w->error, sizeof w->error, "%s", error ?: "");
                return;
        }
        ck_assert_int_eq(r, 0);
        w->messages++;
        if (json_object_get_boolean(json_object_object_get(message, "created")))
                w->created = true;
        if (json_object_get_boolean(json_object_object_get(message, "canceled")))
                w->canceled = true;
        if (json_object_object_get_ex(message, "events", &events) &&
            json_object_array_length(events) > 0 &&
            json_object_object_get_ex(json_object_array_get_idx(events, 0), "type", &type) &&
            strcmp(json_object_get_string(type), "DELETE") == 0)
                w->deleted = true;
}

static EtcdCall *watch(Etcd *e, const char *create_request, struct watch *w) {
        json_object *o = json_tokener_parse(create_request);
        EtcdCall *c = NULL;

        ck_assert_ptr_nonnull(o);
        inside_call = true;
        ck_assert_int_eq(etcd_watch(e, o, on_watch, w, &c), 0);
        inside_call = false;
        json_object_put(o);
        return c;
}

/* A watch says it was created, then delivers a delete; cancelled, it says nothing more. */
START_TEST(test_etcd_watch_delete)
{
        struct result res = {};
        struct watch w = {};
        unsigned created_at = 0;
        EtcdCall *c;
        char *end, request[256];

        call(etcd, "/v3/kv/put", "{\"key\":\"dy94\",\"value\":\"MQ==\"}", &res);     /* w/x */
        ck_assert_int_eq(res.r, 0);
        end = etcd_prefix_end_base64("w/");
        (void) snprintf(request, sizeof request, "{\"key\":\"dy8=\",\"range_end\":\"%s\"}", end);
        free(end);
        c = watch(etcd, request, &w);
        run_until(&w.messages, 1);
        ck_assert(w.created);
        created_at = w.messages;

        call(etcd, "/v3/kv/deleterange", "{\"key\":\"dy94\"}", &res);
        ck_assert_int_eq(res.r, 0);
        ck_assert_int_eq(json_object_get_int64(json_object_object_get(res.reply, "deleted")), 1);
        run_until(&w.messages, created_at + 1);
        ck_assert(w.deleted);
        ck_assert_uint_eq(w.ends, 0);

        ck_assert_ptr_null(etcd_call_cancel(c));
        call(etcd, "/v3/kv/put", "{\"key\":\"dy95\",\"value\":\"MQ==\"}", &res);
        call(etcd, "/v3/kv/range", "{\"key\":\"dy95\"}", &res);
        ck_assert_uint_eq(w.ends, 0);
        ck_assert_uint_eq(w.messages, created_at + 1);
        result_clear(&res);
}
END_TEST

/* A watch that etcd refuses ends at once with etcd's error, mapped. */
START_TEST(test_etcd_watch_refused)
{
        struct watch w = {};

        (void) watch(etcd, "{\"key\":5}", &w);
        run_until(&w.ends, 1);
        ck_assert_int_eq(w.r, -EIO);                    /* gRPC 2, unknown */
        ck_assert_uint_eq(w.messages, 0);
        ck_assert_ptr_nonnull(strstr(w.error, "cannot unmarshal"));
}
END_TEST

/* A dead endpoint listed first is passed over, and the live one is tried first from then
 * on. */
START_TEST(test_etcd_failover)
{
        struct result res = {};
        char endpoints[400];
        Etcd *e;

        (void) snprintf(endpoints, sizeof endpoints, "%s,%s", dead, live);
        ck_assert_int_eq(etcd_new(loop, &(EtcdConfig) { .endpoints = endpoints,
                                                         .timeout_usec = 30ULL * 1000 * 1000 }, &e), 0);
        ck_assert_str_eq(etcd_endpoint(e), dead);
        call(e, "/v3/kv/range", "{\"key\":\"dC9h\"}", &res);
        ck_assert_int_eq(res.r, 0);
        ck_assert_str_eq(etcd_endpoint(e), live);
        call(e, "/v3/kv/range", "{\"key\":\"dC9h\"}", &res);
        ck_assert_int_eq(res.r, 0);
        result_clear(&res);
        etcd_free(e);
}
END_TEST

/* No endpoint reachable: -EHOSTUNREACH naming each, well before the deadline; a watch
 * ends the same way. */
START_TEST(test_etcd_unreachable)
{
        struct result res = {};
        struct watch w = {};
        char endpoints[160], want[256];
        Etcd *e;

        (void) snprintf(endpoints, sizeof endpoints, "%s,%s", dead, dead2);
        ck_assert_int_eq(etcd_new(loop, &(EtcdConfig) { .endpoints = endpoints,
                                                         .timeout_usec = 30ULL * 1000 * 1000 }, &e), 0);
        call(e, "/v3/kv/range", "{\"key\":\"dC9h\"}", &res);
        ck_assert_int_eq(res.r, -EHOSTUNREACH);
        (void) snprintf(want, sizeof want, "cannot reach etcd at %s: Connection refused; "
                        "at %s: Connection refused", dead, dead2);
        ck_assert_str_eq(res.error, want);

        (void) watch(e, "{\"key\":\"dC9h\"}", &w);
        run_until(&w.ends, 1);
        ck_assert_int_eq(w.r, -EHOSTUNREACH);
        ck_assert_uint_eq(w.messages, 0);
        ck_assert_ptr_nonnull(strstr(w.error, dead));
        result_clear(&res);
        etcd_free(e);
}
END_TEST

/* An endpoint that takes the connection and never answers: -ETIMEDOUT at the deadline. */
START_TEST(test_etcd_deadline)
{
        struct result res = {};
        char want[128];
        Etcd *e;

        ck_assert_int_eq(etcd_new(loop, &(EtcdConfig) { .endpoints = silent,
                                                         .timeout_usec = 300 * 1000 }, &e), 0);
        call(e, "/v3/kv/range", "{\"key\":\"dC9h\"}", &res);
        ck_assert_int_eq(res.r, -ETIMEDOUT);
        (void) snprintf(want, sizeof want, "etcd at %s did not answer within 0.3 s", silent);
        ck_assert_str_eq(res.error, want);
        result_clear(&res);
        etcd_free(e);
}
END_TEST

struct chain {
        struct result own;
        EtcdCall *victim;                /* cancelled from the callback */
        struct result *next;             /* started from the callback */
        bool free_etcd;                  /* etcd_free() from the callback */
};

static void on_chain(Etcd *e, int r, json_object *reply, const char *error, void *userdata) {
        struct chain *ch = userdata;

        on_result(e, r, reply, error, &ch->own);
        ch->victim = etcd_call_cancel(ch->victim);
        if (ch->next)
                (void) start(e, "/v3/kv/range", "{\"key\":\"dC9h\"}", ch->next);
        if (ch->free_etcd)
                etcd = etcd_free(etcd);
}

/* A cancelled call is never called back, whether it is cancelled by the caller or from
 * another call's callback; a callback may start calls and free the whole client. */
START_TEST(test_etcd_cancel)
{
        struct result res = {}, cancelled = {}, next = {};
        struct watch w = {};
        struct chain ch = {};
        json_object *o = json_tokener_parse("{\"key\":\"dC9h\"}");

        /* cancelled at once */
        ck_assert_ptr_null(etcd_call_cancel(start(etcd, "/v3/kv/range", "{\"key\":\"dC9h\"}",
                                                  &cancelled)));
        call(etcd, "/v3/kv/range", "{\"key\":\"dC9h\"}", &res);
        ck_assert_int_eq(res.r, 0);
        ck_assert_uint_eq(cancelled.calls, 0);

        /* cancelled, with a watch, from another call's callback, which starts a call */
        ch.victim = watch(etcd, "{\"key\":\"dC9h\"}", &w);
        ch.next = &next;
        ck_assert_int_eq(etcd_call(etcd, "/v3/kv/range", o, on_chain, &ch, NULL), 0);
        run_until(&next.calls, 1);
        ck_assert_uint_eq(ch.own.calls, 1);
        ck_assert_int_eq(next.r, 0);
        ck_assert_uint_eq(w.ends, 0);

        /* the client freed from a callback while a watch and a call are under way */
        result_clear(&ch.own);
        ch = (struct chain) { .free_etcd = true };
        w = (struct watch) {};
        (void) watch(etcd, "{\"key\":\"dC9h\"}", &w);
        (void) start(etcd, "/v3/kv/range", "{\"key\":\"dC9h\"}", &cancelled);
        ck_assert_int_eq(etcd_call(etcd, "/v3/kv/range", o, on_chain, &ch, NULL), 0);
        run_until(&ch.own.calls, 1);
        ck_assert_ptr_null(etcd);
        for (int i = 0; i < 10; i++)
                ck_assert_int_ge(sd_event_run(loop, 10 * 1000), 0);
        ck_assert_uint_eq(w.ends, 0);
        ck_assert_uint_le(cancelled.calls, 1);          /* it may have finished first */

        json_object_put(o);
        result_clear(&res);
        result_clear(&next);
        result_clear(&cancelled);
        result_clear(&ch.own);
}
END_TEST

/* A client with a user: the first calls, started together, share one authentication;
 * once the token has expired (--auth-token-ttl 2, counted from its last use), calls and
 * a watch that all hit the expiry share one more, and none of them sees it. */
START_TEST(test_etcd_token_renewal)
{
        struct result res[4] = {};
        struct watch w = {};
        Etcd *e;

        ck_assert_int_eq(etcd_new(loop, &(EtcdConfig) {
                        .endpoints = secure, .timeout_usec = 30ULL * 1000 * 1000,
                        .cacert = ca_file, .cert = cert_file, .key = key_file,
                        .user = "hc", .password = "hcpw", .check_prefix = "/t/",
                }, &e), 0);
        for (size_t i = 0; i < 4; i++)
                (void) start(e, "/v3/kv/range", "{\"key\":\"L3QvYQ==\"}", &res[i]);
        for (size_t i = 0; i < 4; i++) {
                run_until(&res[i].calls, 1);
                ck_assert_msg(res[i].r == 0, "call %zu: %s", i, res[i].error);
        }
        ck_assert_uint_eq(log_count(slog, "\"authenticated a user\""), 1);

        (void) usleep(3200 * 1000);     /* etcd drops a token within 1 s of its TTL */
        for (size_t i = 0; i < 4; i++) {
                result_clear(&res[i]);
                (void) start(e, "/v3/kv/range", "{\"key\":\"L3QvYQ==\"}", &res[i]);
        }
        (void) watch(e, "{\"key\":\"L3QvYQ==\"}", &w);
        for (size_t i = 0; i < 4; i++) {
                run_until(&res[i].calls, 1);
                ck_assert_msg(res[i].r == 0, "call %zu after the expiry: %s", i, res[i].error);
        }
        run_until(&w.messages, 1);
        ck_assert(w.created);
        ck_assert(!w.canceled);
        ck_assert_uint_eq(w.ends, 0);
        ck_assert_uint_ge(log_count(slog, "\"invalid auth token\""), 1);
        ck_assert_uint_eq(log_count(slog, "\"authenticated a user\""), 2);
        for (size_t i = 0; i < 4; i++)
                result_clear(&res[i]);
        etcd_free(e);
}
END_TEST

/* A watch that is the first to hit the expiry: created once etcd refused its token. */
START_TEST(test_etcd_token_renewal_watch)
{
        struct result res = {};
        struct watch w = {};
        Etcd *e;

        ck_assert_int_eq(etcd_new(loop, &(EtcdConfig) {
                        .endpoints = secure, .timeout_usec = 30ULL * 1000 * 1000,
                        .cacert = ca_file, .cert = cert_file, .key = key_file,
                        .user = "hc", .password = "hcpw",
                }, &e), 0);
        call(e, "/v3/kv/range", "{\"key\":\"L3QvYQ==\"}", &res);
        ck_assert_msg(res.r == 0, "%s", res.error);
        (void) usleep(3200 * 1000);
        (void) watch(e, "{\"key\":\"L3QvYQ==\"}", &w);
        run_until(&w.messages, 1);
        ck_assert(w.created);
        ck_assert(!w.canceled);
        ck_assert_uint_eq(w.ends, 0);
        result_clear(&res);
        etcd_free(e);
}
END_TEST

static Suite *suite_etcd(void) {
        Suite *s = suite_create("etcd");
        TCase *tc;

        tc = tcase_create("core");
        tcase_add_test(tc, test_etcd_new_endpoints);
        tcase_add_test(tc, test_etcd_base64);
        suite_add_tcase(s, tc);

        tc = tcase_create("server");
        tcase_add_unchecked_fixture(tc, start_etcd, stop_etcd);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_etcd_put_range_txn);
        tcase_add_test(tc, test_etcd_lease_and_errors);
        tcase_add_test(tc, test_etcd_watch_delete);
        tcase_add_test(tc, test_etcd_watch_refused);
        tcase_add_test(tc, test_etcd_failover);
        tcase_add_test(tc, test_etcd_unreachable);
        tcase_add_test(tc, test_etcd_deadline);
        tcase_add_test(tc, test_etcd_cancel);
        suite_add_tcase(s, tc);

        if (access(ETCDCTL_BIN, X_OK) == 0 && access(OPENSSL_BIN, X_OK) == 0) {
                tc = tcase_create("secure");
                tcase_add_unchecked_fixture(tc, start_secure_etcd, stop_secure_etcd);
                tcase_add_checked_fixture(tc, setup, teardown);
                tcase_set_timeout(tc, 120);
                tcase_add_test(tc, test_etcd_token_renewal);
                tcase_add_test(tc, test_etcd_token_renewal_watch);
                suite_add_tcase(s, tc);
        } else
                printf("Not testing etcd with TLS and users: no %s or no %s\n", ETCDCTL_BIN,
                       OPENSSL_BIN);
        return s;
}

int main(void) {
        SRunner *sr;
        int failed;

        if (access(ETCD_BIN, X_OK) < 0) {
                printf("SKIP: %s is missing (Debian package 'etcd-server')\n", ETCD_BIN);
                return 77;
        }
        sr = srunner_create(suite_etcd());
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
