#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The fleet agent on a secured etcd: https with a private CA, client certificates required
# (--client-cert-auth), etcd authentication with a role limited to the prefix, and tokens
# that expire every 2 s. Agents with the password from a file and from the service
# credential hold --max across hosts, survive several token expiries without losing a
# seat, and free a killed holder's seat. Each bad credential (a wrong CA, a wrong
# password, a role without the prefix, no client certificate, one etcd does not trust, one
# with a CommonName, no user at all) gives one line naming the cause, in the agent's log
# and to every client (exit 69), and no agent says it holds a lease then. The password
# shows in no log and no command line.
. "${srcdir:-.}/tests/fleet/lib.sh"
command -v openssl >/dev/null || skip "openssl is needed to make the certificates"
unset CREDENTIALS_DIRECTORY HEADCOUNT_ETCD      # host c gets its own; nothing else inherits one
fleet_events

# The certificates: a CA, etcd's, ours without a CommonName (lib.sh's pki_make), one with
# a CN, and another CA, which signed one that etcd does not trust.
pki=$T/pki
pki_make "$pki"
pki_ca "$pki" otherca &&
pki_cert "$pki" cnclient "/CN=hc" "extendedKeyUsage=clientAuth" &&
pki_cert "$pki" foreign "/O=headcount test/OU=elsewhere" "extendedKeyUsage=clientAuth" otherca || {
        echo "cannot make the certificates with openssl" >&2
        exit 99
}

etcd_tls_flags "$pki"
ETCD_FLAGS+=(--auth-token-ttl 2)
etcd_start 1

# Users: root; hc, whose role may read and write /headcount/ only; hcother, whose role has
# /other/ only. Passwords on etcdctl's standard input.
pw="hc-pw-$RANDOM$RANDOM$RANDOM"
rootpw="root-pw-$RANDOM$RANDOM"
{
        echo "$rootpw" | ectl user add root --interactive=false &&
        ectl role add root &&
        ectl user grant-role root root &&
        ectl role add hc-fleet &&
        ectl role grant-permission hc-fleet --prefix=true readwrite "$FLEET_PREFIX" &&
        echo "$pw" | ectl user add hc --interactive=false &&
        ectl user grant-role hc hc-fleet &&
        ectl role add hc-other &&
        ectl role grant-permission hc-other --prefix=true readwrite /other/ &&
        echo "$pw" | ectl user add hcother --interactive=false &&
        ectl user grant-role hcother hc-other &&
        ectl auth enable
} >"$T/etcdctl.log" 2>&1 || {
        echo "cannot set up etcd's users:" >&2
        cat "$T/etcdctl.log" >&2
        exit 99
}
ECTL_OPTS+=(--user "root:$rootpw")

printf '%s\n' "$pw" >"$T/pw"
printf 'not-%s\n' "$pw" >"$T/badpw"
mkdir -m 0700 "$T/creds"
printf '%s' "$pw" >"$T/creds/etcd-password"
chmod 0600 "$T/pw" "$T/badpw" "$T/creds/etcd-password"
tls=(--etcd-cacert "$pki/ca.crt" --etcd-cert "$pki/client.crt" --etcd-key "$pki/client.key")

host_start a "${tls[@]}" --etcd-user hc --etcd-password-file "$T/pw"
host_start b "${tls[@]}" --etcd-user hc --etcd-password-file "$T/pw"
CREDENTIALS_DIRECTORY=$T/creds host_start c "${tls[@]}" --etcd-user hc

# --max 1 across hosts: one runs, the other hears the name is full.
hold a run --max 1 cap -- "$T/hold.sh" A1
holder=$!
expect_event "A1 admitted" "A1 * *"
fence=${event##* }
expect 75 on b run --max 1 cap -- true
contains "$T/err" "cap"
same "count from b" "$(fleet_count b cap)" 1
same "count from c (the password from the credential)" "$(fleet_count c cap)" 1
same "seat keys" "$(seat_keys cap)" 1

# Three token lifetimes and more: each pause lets every token expire (a token's life is
# renewed only by a call that uses it; the lease's keepalives do not; etcd forgets a token
# within a second of its TTL), each count after it needs a new one, and the lease and the
# seat live on. etcd logs each refused token.
refused() {
        grep -c '"invalid auth token"' "$T/etcd-m0.log"
}
refused_before=$(refused)
for i in 1 2 3; do
        sleep 3.2
        # a name nobody here watches: the count is a read in etcd
        same "count from a after token expiry $i" "$(fleet_count a "idle$i")" 0
done
check "etcd refused expired tokens (before: $refused_before, after: $(refused))" \
        test "$(refused)" -ge $((refused_before + 3))
check "A1 still runs after three token expiries" running "$holder"
same "A1's fence in etcd after the expiries" \
        "$(ectl get --prefix -w json "${FLEET_PREFIX}cap/s/" |
           python3 -c 'import json,sys; print(json.load(sys.stdin)["kvs"][0]["create_revision"])')" \
        "$fence"
sleep 3.2
expect 0 on b run --max 1 other -- true
expect 0 on c run --max 1 other -- true
grep -n "Lost etcd lease\|lost with the etcd lease" "$T/host-a.log" >"$T/lost"
same "lease losses on a" "$(wc -l <"$T/lost")" 0

# SIGKILL of the holder (headcount and its command): its seat is free at once.
disown "$holder"
kill_tree KILL "$holder"
wait_for 10 "the killed holder's seat is free" count_is b cap 0
expect 0 on c run --max 1 cap -- true

# Bad credentials: one line naming the cause, in the log at start and from every call.
bad() {         # HOST CAUSE OPTION...
        local h=$1 cause=$2
        shift 2
        host_start "$h" "$@"
        wait_for 15 "$h logs why it has no lease" grep -q "Cannot get an etcd lease" "$T/host-$h.log"
        contains "$T/host-$h.log" "$cause"
        expect 69 on "$h" count cap
        contains "$T/err" "$cause"
        same "error lines from count on $h" "$(wc -l <"$T/err")" 1
        expect 69 on "$h" run cap -- true
        contains "$T/err" "$cause"
        same "'Holding etcd lease' in $h's log" "$(grep -c "Holding etcd lease" "$T/host-$h.log")" 0
}
bad badca "fails verification with the CA in $pki/otherca.crt (--etcd-cacert)" \
        --etcd-cacert "$pki/otherca.crt" --etcd-cert "$pki/client.crt" \
        --etcd-key "$pki/client.key" --etcd-user hc --etcd-password-file "$T/pw"
bad badpw "refused user 'hc': wrong user name or password" \
        "${tls[@]}" --etcd-user hc --etcd-password-file "$T/badpw"
bad norole "says user 'hcother' may not read and write the keys under '$FLEET_PREFIX'" \
        "${tls[@]}" --etcd-user hcother --etcd-password-file "$T/pw"
bad nocert "requires a client certificate (give --etcd-cert and --etcd-key)" \
        --etcd-cacert "$pki/ca.crt" --etcd-user hc --etcd-password-file "$T/pw"
bad foreign "refused our client certificate $pki/foreign.crt" \
        --etcd-cacert "$pki/ca.crt" --etcd-cert "$pki/foreign.crt" \
        --etcd-key "$pki/foreign.key" --etcd-user hc --etcd-password-file "$T/pw"
bad cncert "has a CommonName (CN), which etcd's JSON gateway does not accept" \
        --etcd-cacert "$pki/ca.crt" --etcd-cert "$pki/cnclient.crt" \
        --etcd-key "$pki/cnclient.key" --etcd-user hc --etcd-password-file "$T/pw"
bad nouser "requires authentication" "${tls[@]}"

# A password in the URL is refused without being echoed, from --etcd or $HEADCOUNT_ETCD;
# the other options are checked at start, in one line each.
usage() {       # TEXT OPTION...: headcountd exits 64 with TEXT, without the password
        local text=$1
        shift
        expect 64 "$HEADCOUNTD" --dir "$T" --bus=none --host x "$@"
        contains "$T/err" "$text"
        same "the password in the usage error '$text'" "$(grep -cF -- "$pw" "$T/err")" 0
}
usage "carries a user name or password" --etcd "https://hc:$pw@127.0.0.1:1"
usage "carries a user name or password" --etcd "https://127.0.0.1:1,http://hc:$pw@127.0.0.1:2/x"
HEADCOUNT_ETCD="https://hc:$pw@127.0.0.1:1" usage "carries a user name or password"
usage "--etcd-user needs a password" --etcd "$ETCD_ENDPOINTS" --etcd-user hc
CREDENTIALS_DIRECTORY=$T/nothing usage "the credential etcd-password: cannot read" \
        --etcd "$ETCD_ENDPOINTS" --etcd-user hc
usage "--etcd-password-file needs --etcd-user" --etcd "$ETCD_ENDPOINTS" --etcd-password-file "$T/pw"
: >"$T/empty"
usage "is empty" --etcd "$ETCD_ENDPOINTS" --etcd-user hc --etcd-password-file "$T/empty"
usage "--etcd-cacert: cannot read '$T/nothing'" --etcd "$ETCD_ENDPOINTS" --etcd-cacert "$T/nothing"
usage "--etcd-key needs --etcd-cert" --etcd "$ETCD_ENDPOINTS" --etcd-key "$pki/client.key"
usage "need https://" --etcd http://127.0.0.1:1 --etcd-cacert "$pki/ca.crt"
usage "need --etcd" --etcd-user hc --etcd-password-file "$T/pw"

# The password is in no log and on no command line.
for h in "${!HOST_PID[@]}"; do
        same "the password in $h's log" "$(grep -cF -- "$pw" "$T/host-$h.log")" 0
        if [ -r "/proc/${HOST_PID[$h]}/cmdline" ]; then
                same "the password in $h's command line" \
                        "$(tr '\0' ' ' <"/proc/${HOST_PID[$h]}/cmdline" | grep -cF -- "$pw")" 0
        fi
done
fleet_finish
