// SPDX-License-Identifier: GPL-2.0
/*
 * Foreign kprobes held at optprobe_target_event+12 until rmmod, for
 * 55_foreign_events.sh: plain register_kprobe() users, as other subsystems
 * are, that the optimized path must not run (or must catch).
 *
 *   hold_post   a kprobe with a post-handler: optprobe puts the BRK back
 *   hold_other  a pre-handler not on the allowlist: stays BRK
 *   hold_pc     a pre-handler that skips the instruction (pc += 4, return
 *               1): allowed in test builds only (its name), counted and
 *               refused on the optimized path
 *   hold_override  a pre-handler that makes the function return 0xbad at
 *               once, as fail_function and bpf_override_return do (x0 set,
 *               pc = lr, return 1): not allowed; the optimized path must
 *               not run it (it would clobber x0 and carry on)
 */
#include "ktest.h"

static struct kprobe held;
static bool holding;

static int hold_pre(struct kprobe *p, struct pt_regs *regs)
{
	return 0;
}
NOKPROBE_SYMBOL(hold_pre);

static void hold_post(struct kprobe *p, struct pt_regs *regs, unsigned long flags)
{
}
NOKPROBE_SYMBOL(hold_post);

/* The name is what test builds of optprobe allow (src/test_hooks.rs). */
static int optprobe_test_allowed_skip(struct kprobe *p, struct pt_regs *regs)
{
	instruction_pointer_set(regs, instruction_pointer(regs) + 4);
	return 1;
}
NOKPROBE_SYMBOL(optprobe_test_allowed_skip);

static int hold_override_pre(struct kprobe *p, struct pt_regs *regs)
{
	regs->regs[0] = 0xbad;
	instruction_pointer_set(regs, regs->regs[30]);
	return 1;
}
NOKPROBE_SYMBOL(hold_override_pre);

static int hold(kprobe_pre_handler_t pre, kprobe_post_handler_t post)
{
	held.addr = (kprobe_opcode_t *)((unsigned long)optprobe_target_event + 12);
	held.pre_handler = pre;
	held.post_handler = post;
	if (register_kprobe(&held))
		return -EINVAL;
	holding = true;
	return 0;
}

int case_hold_post(void) { return hold(hold_pre, hold_post); }
int case_hold_other(void) { return hold(hold_pre, NULL); }
int case_hold_pc(void) { return hold(optprobe_test_allowed_skip, NULL); }
int case_hold_override(void) { return hold(hold_override_pre, NULL); }

void foreign_exit(void)
{
	if (holding)
		unregister_kprobe(&held);
}
