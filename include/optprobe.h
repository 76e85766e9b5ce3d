/* SPDX-License-Identifier: GPL-2.0 */
/*
 * optprobe: optimized kprobes for arm64 -- C ABI for in-kernel callers.
 *
 * A probe is an ordinary kprobe underneath. When the probed instruction can
 * run out of line and a trampoline fits within branch range, the kprobe's BRK
 * is replaced by a direct "b" to a per-probe trampoline ("optimized");
 * otherwise the probe stays a BRK kprobe ("kprobe") and optprobe_reason()
 * says why. Either way the handler runs on every hit.
 *
 * Handler contract:
 *  - Runs with preemption disabled; must not sleep.
 *  - May read every field of *regs. May change x0-x30 (they are restored).
 *    Must not change regs->pc or regs->sp: changes are ignored.
 *  - In regs->pstate, trust only NZCV, DAIF, PAN and M[3:0] (exception level and
 *    SP selection); every other PSTATE field reads as zero.
 *  - A hit while another kprobe or optprobe is being handled on the same CPU
 *    is counted as missed and the handler is skipped.
 *  - A stack trace taken in the handler shows the probed function, then its
 *    caller.
 *
 * A module that registers probes must unregister them before it unloads; if
 * it does not, optprobe removes every probe whose handler, post handler or
 * data lie in the module when it goes (and says so in the log).
 *
 * All functions sleep and must be called from process context.
 */
#ifndef _OPTPROBE_H
#define _OPTPROBE_H

#include <linux/types.h>

struct pt_regs;
struct optprobe;

typedef void (*optprobe_handler_t)(void *data, struct pt_regs *regs);

struct optprobe_desc {
	/* Where: symbol + offset, or addr when symbol is NULL. */
	const char *symbol;
	unsigned long offset;
	void *addr;
	/* Optional name shown in the listing; copied (up to 64 characters). */
	const char *name;
	/* Called on every hit, before the probed instruction runs. */
	optprobe_handler_t handler;
	/*
	 * Optional: called after the probed instruction ran. A probe with a
	 * post handler is never optimized with a branch (reason
	 * "post-handler"); at a function entry on a BTI kernel it is delivered
	 * through ftrace all the same, the post handler seeing pc = sym+4.
	 */
	optprobe_handler_t post_handler;
	void *data;
	/*
	 * Out: the probe's handle. Opaque (never a pointer to dereference) and
	 * never reused: after unregister every call given it fails with
	 * -EINVAL (or returns 0/NULL), even if a new probe takes the address.
	 */
	struct optprobe *probe;
};

enum optprobe_state {
	OPTPROBE_STATE_KPROBE = 0,	/* BRK kprobe; see optprobe_reason() */
	OPTPROBE_STATE_OPTIMIZED = 1,	/* direct branch to a trampoline */
	OPTPROBE_STATE_DISABLED = 2,	/* registered, text restored, no hits */
	OPTPROBE_STATE_GONE = 3,	/* its text was freed (a module's init
					 * text once the module is live); no
					 * hits; only unregister is left */
	OPTPROBE_STATE_FTRACE = 4,	/* a function entry on a BTI kernel,
					 * delivered at its ftrace call site */
};

/* Register one probe. 0 or -errno; nothing is left behind on error. */
int optprobe_register(struct optprobe_desc *desc);

/*
 * Register n probes; all are optimized in as few stop_machine() calls as the
 * batch limit allows. All or nothing: on error none stays registered and the
 * error is that of the first failing descriptor.
 */
int optprobe_register_batch(struct optprobe_desc *descs, unsigned int n);

/* Unregister; the handler is not running and will not run when this returns. */
void optprobe_unregister(struct optprobe *probe);
void optprobe_unregister_batch(struct optprobe **probes, unsigned int n);

/*
 * Disable a probe: the branch (after an RCU-tasks grace period, with its
 * trampoline) and the BRK are removed, so the probed text is the original
 * again. Once it returns, a handler that was running has finished within one
 * RCU grace period and none starts. Enable arms it again and re-optimizes it
 * when still eligible. Both are idempotent; 0 or -errno (-EINVAL for an
 * unknown pointer).
 */
int optprobe_disable(struct optprobe *probe);
int optprobe_enable(struct optprobe *probe);

/* Handler runs so far, and hits skipped as missed; 0 for an unknown pointer. */
unsigned long optprobe_hits(struct optprobe *probe);
unsigned long optprobe_missed(struct optprobe *probe);

/* enum optprobe_state, or -EINVAL for an unknown pointer. */
int optprobe_state(struct optprobe *probe);

/*
 * Why the probe is not optimized; NULL when it is. A static string: it stays
 * valid after the probe is unregistered.
 */
const char *optprobe_reason(struct optprobe *probe);

/* Number of stop_machine() text-patch batches optprobe has issued so far. */
unsigned long optprobe_stop_machine_count(void);

/* Figures for benchmarks and leak checks. */
struct optprobe_stats {
	unsigned long probes;			/* registered, all interfaces */
	unsigned long optimized;		/* of which optimized */
	unsigned long trampoline_pages;		/* pages currently allocated */
	unsigned long stop_machine_calls;	/* batches issued so far */
	unsigned int slot_bytes;		/* trampoline slot size */
	unsigned int template_bytes;		/* bytes of each slot in use */
	unsigned int probe_bytes;		/* per-probe bookkeeping struct */
};
void optprobe_get_stats(struct optprobe_stats *stats);

#endif /* _OPTPROBE_H */
