/* SPDX-License-Identifier: GPL-2.0 */
/*
 * optprobe_ktest: what the case files share -- parameters, the FAIL/CHECK
 * macros, common handlers and the worker kthread. Each case group is one
 * file: api.c (hits, flags, fallback, backtrace, coexist, scale), races.c
 * (races, torture), lifetime.c (reason, handles, leak, missed), reloc.c,
 * cost.c; main.c holds the driver.
 */
#ifndef OPTPROBE_KTEST_H
#define OPTPROBE_KTEST_H

#include <linux/atomic.h>
#include <linux/delay.h>
#include <linux/kallsyms.h>
#include <linux/kprobes.h>
#include <linux/fs.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/random.h>
#include <linux/prandom.h>
#include <linux/slab.h>
#include <linux/stacktrace.h>
#include <linux/string.h>
#include <linux/jiffies.h>
#include <linux/ktime.h>
#include <linux/math64.h>
#include <asm/ptrace.h>
#include <asm/fpu.h>
#include <asm/pgtable.h>
#include <asm/cpufeature.h>
#include <asm/sysreg.h>
#include <asm/setup.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>
#include <linux/mm.h>
#include "../../include/optprobe.h"
#include "../target.h"

/* Module parameters (main.c). */
extern char *test_case;
extern unsigned int seconds;
extern unsigned int calls;
extern unsigned int seed;
extern unsigned int scale_probes;

#define FAIL(fmt, ...) do {						\
	pr_err("optprobe_ktest: %s: FAIL: " fmt "\n", test_case, ##__VA_ARGS__); \
	ret = -EINVAL;							\
	goto out;							\
} while (0)
#define CHECK(cond, fmt, ...) do { if (!(cond)) FAIL(fmt, ##__VA_ARGS__); } while (0)

static inline const char *reason_of(struct optprobe *p)
{
	const char *r = optprobe_reason(p);

	return r ? r : "-";
}

/* An unexported kernel symbol's address, or NULL (main.c). */
void *ktest_lookup(const char *name);

/* Handlers shared by several cases (main.c). */
void count_handler(void *data, struct pt_regs *regs);	/* atomic_inc(data) */
void post_handler(void *data, struct pt_regs *regs);	/* does nothing */

/* A kthread calling one probed target function until stopped (main.c). */
struct worker {
	struct task_struct *task;
	u64 (*target)(u64 x);
	u64 calls;
};
int worker_loop(void *data);
u64 call_args_once(u64 x);

/* The cases, one KTAP result each (tests/kselftest/ktest_cases). */
int case_hits(void);
int case_flags(void);
int case_fallback(void);
int case_backtrace(void);
int case_coexist(void);
int case_scale(void);
int case_races(void);
int case_torture(void);
int case_reloc(void);
int case_cost(void);
int case_reason(void);
int case_handles(void);
int case_leak(void);
int case_missed(void);
int case_context(void);
int case_pages(void);
int case_regs(void);
int case_late_post(void);
int case_faults(void);

/* foreign.c: kprobes held until rmmod. */
int case_hold_post(void);
int case_hold_other(void);
int case_hold_pc(void);
int case_hold_override(void);
void foreign_exit(void);
int case_entry_tokens(void);
int case_entry_window(void);
int case_entry_post(void);
int case_entry_regs(void);

/* 6.12's pt_regs has u64 pmr_save, 6.13+'s u32 pmr (Kbuild detects which). */
#ifdef OPTPROBE_PT_REGS_PMR_SAVE
#define PT_REGS_PMR(regs) ((regs)->pmr_save)
#else
#define PT_REGS_PMR(regs) ((regs)->pmr)
#endif

#endif
