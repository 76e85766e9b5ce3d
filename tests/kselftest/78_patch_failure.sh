# Text patching that fails part-way (issue 11, items 4 and 6), through the
# test-only fault point patch_fail_after=N: each batch writes its first N
# entries, then fails, as aarch64_insn_patch_text() does.
# - optimize: the entries written are live branches; their probes are
#   optimized, the others stay BRK kprobes ("text patching failed"), and no
#   trampoline a live branch leads to is freed.
# - unoptimize: a probe whose branch could not be removed is never freed or
#   unregistered (a task may still be in its trampoline): it is kept as an
#   orphan, its handler dropped, listed, and optprobe stays loaded; a later
#   change retries it.
. /tests/kselftest/lib/common.sh
load_all
[ -e $HOOKS/patch_fail_after ] || fail "no test hooks in this build (make test builds with OPTPROBE_TEST_HOOKS=1)"
pages0=$(statval trampoline_pages)
echo 1 > $HOOKS/patch_fail_after
printf 'p:a optprobe_target_args+4\np:b optprobe_target_args+8\np:c optprobe_target_args+12\n' > $SYS/control ||
    { echo -1 > $HOOKS/patch_fail_after; fail "add a, b, c"; }
echo -1 > $HOOKS/patch_fail_after
info "$(grep -E '^(a|b|c) ' $SYS/probes | tr -s ' ')"
[ "$(state a)" = optimized ] || fail "a (written before the failure) is '$(state a)'"
[ "$(state b)" = kprobe ] && [ "$(state c)" = kprobe ] || fail "b '$(state b)', c '$(state c)': want kprobe"
reason b | grep -q "patching failed" || fail "b: reason '$(reason b)'"
call_target 5
[ "$(hits a)/$(hits b)/$(hits c)" = 5/5/5 ] || fail "hits $(hits a)/$(hits b)/$(hits c), want 5/5/5"
printf -- '-:a\n-:b\n-:c\n' > $SYS/control || fail "remove a, b, c"
[ "$(statval trampoline_pages)" = "$pages0" ] || fail "trampoline pages $(statval trampoline_pages), want $pages0"

# unoptimize fails with spinners running through the probes.
cleanup
insmod $M/optprobe_target.ko spin=2 || fail "insmod optprobe_target spin=2"
insmod $M/optprobe.ko || fail "insmod optprobe"
ctl "p:w1 optprobe_target_work+16" || fail "add w1"
ctl "p:w2 optprobe_target_work+20" || fail "add w2"
[ "$(state w1)" = optimized ] && [ "$(state w2)" = optimized ] || fail "w1 '$(state w1)', w2 '$(state w2)'"
echo 0 > $HOOKS/patch_fail_after
printf -- '-:w1\n-:w2\n' > $SYS/control
rc=$?
echo -1 > $HOOKS/patch_fail_after
info "after the failed removal (write rc $rc): $(grep -E '^w[12] ' $SYS/probes | tr -s ' ' | tr '\n' ';')"
[ "$(state w1)" = orphan ] && [ "$(state w2)" = orphan ] || fail "w1 '$(state w1)', w2 '$(state w2)': want orphan"
[ "$(statval probes)" = 2 ] || fail "stats: $(statval probes) probes, want the 2 orphans"
h=$(hits w1); usleep 200000
[ "$(hits w1)" -gt "$h" ] || fail "the orphan's branch is live but it stopped counting hits"
rmmod optprobe 2>/dev/null && fail "optprobe unloaded with an orphaned trampoline live"
# Any later change retries the orphans.
ctl "p:x vfs_read+16" || fail "add x"
ctl "-:x" || fail "remove x"
[ "$(statval probes)" = 0 ] || fail "orphans not retried: $(grep -v '^#' $SYS/probes | tr -s ' ')"
[ "$(statval trampoline_pages)" = "$pages0" ] || fail "trampoline pages $(statval trampoline_pages), want $pages0"
rmmod optprobe || fail "rmmod optprobe after the retry"
# An orphan inside a module that goes away: released with the module, never
# retried on its freed text later.
cleanup
insmod $M/optprobe_target.ko || fail "insmod optprobe_target"
insmod $M/optprobe.ko || fail "insmod optprobe"
ctl "p:o1 optprobe_target_args+4" || fail "add o1"
echo 0 > $HOOKS/patch_fail_after
ctl "-:o1"
[ "$(state o1)" = orphan ] || { echo -1 > $HOOKS/patch_fail_after; fail "o1 '$(state o1)', want orphan"; }
rmmod optprobe_target || { echo -1 > $HOOKS/patch_fail_after; fail "rmmod optprobe_target with an orphan in it"; }
echo -1 > $HOOKS/patch_fail_after
[ "$(statval probes)" = 0 ] || fail "the orphan outlived its module: $(grep -v '^#' $SYS/probes | tr -s ' ')"
ctl "p:x vfs_read+16" || fail "add x after the module left"
ctl "-:x" || fail "remove x"
[ "$(statval trampoline_pages)" = "$pages0" ] || fail "trampoline pages $(statval trampoline_pages), want $pages0"
rmmod optprobe || fail "rmmod optprobe (pin not dropped with the released orphan)"
# Arming fails on a probed BL (it reads back as a branch when unpatched):
# the probe must still be armed, by the core, and hit.
cleanup
load_all
echo 0 > $HOOKS/patch_fail_after
ctl "p:bl optprobe_target_call_args+28"
rc=$?
echo -1 > $HOOKS/patch_fail_after
[ $rc = 0 ] || fail "add bl refused"
info "$(grep '^bl ' $SYS/probes | tr -s ' ')"
call_target 3
want_hits bl 3 "a probe whose arming write failed"
cleanup
exit 0
