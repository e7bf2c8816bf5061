# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by the shell tests that run python3 on a build's library or module.
#
# sanitizer_preload BUILDDIR: prints, colon-separated, the sanitizers' runtimes that a
# program built without them (python3) must load first to use BUILDDIR's library when
# BUILDDIR was configured with --enable-sanitize; prints nothing otherwise. Python's own
# allocations at exit are no leak of ours: run it with detect_leaks=0 in ASAN_OPTIONS
# (the last of several wins).
sanitizer_preload() {
        _sp_list=
        if "$1/config.status" --config 2>/dev/null | grep -q -- "--enable-sanitize"; then
                for _sp_rt in libasan.so libubsan.so; do
                        _sp_f=$(${CC:-cc} -print-file-name=$_sp_rt 2>/dev/null)
                        [ -f "$_sp_f" ] && _sp_list=$_sp_list${_sp_list:+:}$_sp_f
                done
        fi
        echo "$_sp_list"
}
