// SPDX-License-Identifier: GPL-2.0
/*
 * C glue for optprobe: static inlines and macros with no Rust equivalent in
 * 6.12 (preemption, per-CPU pointers, memory-layout constants), the sysfs
 * attribute table, the module parameter, the C ABI exports and the kprobe
 * blacklist entries for the hit path. Logic lives in Rust
 * (the hit path in src/hit.rs).
 */
#include <linux/kprobes.h>
#include <linux/kobject.h>
#include <linux/sysfs.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/percpu.h>
#include <linux/preempt.h>
#include <linux/vmalloc.h>
#include <linux/cred.h>
#include <linux/sched.h>
#include <linux/cpu.h>
#include <asm/memory.h>
#include <asm/cpufeature.h>
#include <asm/sections.h>
/* aarch64_insn_patch_text's header; renamed asm/text-patching.h in 6.16. */
#if __has_include(<asm/text-patching.h>)
#include <asm/text-patching.h>
#else
#include <asm/patching.h>
#endif
#include <linux/kallsyms.h>
#include <linux/irq_work.h>
#include <linux/workqueue.h>
#include <linux/set_memory.h>
#include <linux/delay.h>
#include <linux/string.h>
#include <linux/kstrtox.h>
#include <linux/ftrace.h>
#include <linux/slab.h>
#include <linux/irqflags.h>
#include "glue.h"
#include "../include/optprobe.h"
/*
 * compiler_types.h defines `auto` as `__auto_type`; the parameter and the
 * sysfs file are named "auto", and the name macros stringify expanded
 * arguments. Nothing here uses the keyword.
 */
#undef auto

/*
 * What the hit path (src/hit.rs) needs to do this_cpu_ptr() inline: which
 * register holds the per-CPU offset (tpidr_el2 with VHE).
 */
bool optprobe_percpu_in_tpidr_el2(void) { return cpus_have_final_cap(ARM64_HAS_VIRT_HOST_EXTN); }
/* The rare end of an inline preempt_enable(): the count reached zero with a
 * reschedule pending. Going through the C pair keeps the config's policy
 * (PREEMPT, PREEMPT_DYNAMIC, none). */
void optprobe_preempt_resched(void) { preempt_disable(); preempt_enable(); }
NOKPROBE_SYMBOL(optprobe_preempt_resched);
void *optprobe_per_cpu_ptr(void *percpu_ptr, int cpu)
{
	return per_cpu_ptr((void __percpu *)percpu_ptr, cpu);
}
/* A macro (mutex_lock_nested) under lockdep: call it from C. */
void optprobe_mutex_lock(struct mutex *lock) { mutex_lock(lock); }
void optprobe_mutex_unlock(struct mutex *lock) { mutex_unlock(lock); }
void optprobe_cpus_read_lock(void) { cpus_read_lock(); }
void optprobe_cpus_read_unlock(void) { cpus_read_unlock(); }
void *optprobe_alloc_percpu_u64(void) { return (void __force *)alloc_percpu(u64); }
int optprobe_nr_cpu_ids(void) { return nr_cpu_ids; }
int optprobe_cpu_possible(int cpu) { return cpu_possible(cpu); }
unsigned long optprobe_vmalloc_end(void) { return VMALLOC_END; }
unsigned long optprobe_modules_vaddr(void) { return MODULES_VADDR; }
unsigned long optprobe_page_size(void) { return PAGE_SIZE; }
void optprobe_pin_module(void) { __module_get(THIS_MODULE); }
void optprobe_unpin_module(void) { module_put(THIS_MODULE); }
bool optprobe_has_pan(void) { return cpus_have_final_cap(ARM64_HAS_PAN); }
bool optprobe_uses_prio_masking(void) { return system_uses_irq_prio_masking(); }
bool optprobe_has_syslog(void) { return has_capability_noaudit(current, CAP_SYSLOG); }

/*
 * Calls through addresses resolved with kallsyms_lookup_name. Each cast uses
 * the kernel's own prototype (typeof), so the compiler checks the signature.
 */
unsigned long optprobe_call_kallsyms_lookup_name(void *fn, const char *name)
{
	return ((typeof(&kallsyms_lookup_name))fn)(name);
}
int optprobe_call_patch_text(void *fn, void **addrs, u32 *insns, int cnt)
{
	return ((typeof(&aarch64_insn_patch_text))fn)(addrs, insns, cnt);
}
void *optprobe_call_insn_copy(void *fn, void *dst, void *src, size_t len)
{
	return ((typeof(&aarch64_insn_copy))fn)(dst, src, len);
}
/*
 * One page, read-only and executable from the start, inside [start, end).
 * No warning on failure: the caller handles it (the probe stays a BRK kprobe).
 */
void *optprobe_call_vmalloc_range(void *fn, unsigned long start, unsigned long end)
{
	return ((typeof(&__vmalloc_node_range_noprof))fn)(PAGE_SIZE, PAGE_SIZE,
			start, end, GFP_KERNEL | __GFP_NOWARN, PAGE_KERNEL_ROX,
			VM_FLUSH_RESET_PERMS, NUMA_NO_NODE,
			__builtin_return_address(0));
}
/* set_memory_rox() for one page: an inline over two unexported functions. */
int optprobe_call_set_memory_rox(void *ro, void *x, unsigned long addr)
{
	int ret = ((typeof(&set_memory_ro))ro)(addr, 1);

	return ret ? ret : ((typeof(&set_memory_x))x)(addr, 1);
}
struct kprobe *optprobe_call_get_kprobe(void *fn, void *addr)
{
	return ((typeof(&get_kprobe))fn)(addr);
}
NOKPROBE_SYMBOL(optprobe_call_get_kprobe);
int optprobe_call_lookup_size_offset(void *fn, unsigned long addr,
				     unsigned long *size, unsigned long *offset)
{
	return ((typeof(&kallsyms_lookup_size_offset))fn)(addr, size, offset);
}
bool optprobe_within_module(unsigned long addr, struct module *mod)
{
	return within_module(addr, mod);
}
bool optprobe_within_module_init(unsigned long addr, struct module *mod)
{
	return within_module_init(addr, mod);
}

/*
 * Fallback to BRK when a kprobe with a post-handler joins an optimized
 * address (src/hit.rs): the hit path queues an irq_work (safe in any
 * context), which queues a work item, which takes the registry lock.
 */
static void optprobe_fallback_workfn(struct work_struct *work)
{
	optprobe_fallback_work();
}
static DECLARE_WORK(optprobe_fallback_work_item, optprobe_fallback_workfn);

static void optprobe_fallback_irq(struct irq_work *work)
{
	schedule_work(&optprobe_fallback_work_item);
}
static DEFINE_IRQ_WORK(optprobe_fallback_irq_work, optprobe_fallback_irq);

void optprobe_request_fallback(void)
{
	irq_work_queue(&optprobe_fallback_irq_work);
}
NOKPROBE_SYMBOL(optprobe_request_fallback);

/* Module exit: no fallback queued or running any more. */
void optprobe_fallback_sync(void)
{
	irq_work_sync(&optprobe_fallback_irq_work);
	cancel_work_sync(&optprobe_fallback_work_item);
}

/*
 * Others' kprobes (src/foreign.rs). BTI is enforced in kernel text only when
 * the config and every CPU have it (fixed at boot; arm64.nobti turns it off).
 */
bool optprobe_bti_enforced(void) { return system_supports_bti_kernel(); }

/*
 * Call fn(ctx, kp) for every kprobe hashed in the core's kprobe_table (an
 * array of hlist_head, `len` bytes: see sys.rs). The caller holds
 * kprobe_mutex. Stops at the first
 * non-zero return and passes it on.
 */
int optprobe_walk_kprobe_table(void *table, unsigned long len,
			       int (*fn)(void *ctx, struct kprobe *kp), void *ctx)
{
	struct hlist_head *head = table;
	unsigned long i;
	struct kprobe *p;
	int ret;

	for (i = 0; i < len / sizeof(*head); i++)
		hlist_for_each_entry(p, &head[i], hlist) {
			ret = fn(ctx, p);
			if (ret)
				return ret;
		}
	return 0;
}

/*
 * The foreign-kprobe poller: a delayed work item that re-runs while
 * optprobe_foreign_work() asks for it (the return value is the next delay
 * in ms; 0 stops it). A kick runs it after `ms` (now: 0).
 */
static void optprobe_foreign_workfn(struct work_struct *work);
static DECLARE_DELAYED_WORK(optprobe_foreign_dwork, optprobe_foreign_workfn);
static void optprobe_foreign_workfn(struct work_struct *work)
{
	unsigned int next = optprobe_foreign_work();

	if (next)
		schedule_delayed_work(&optprobe_foreign_dwork, msecs_to_jiffies(next));
}
void optprobe_foreign_kick(unsigned int ms)
{
	mod_delayed_work(system_wq, &optprobe_foreign_dwork, msecs_to_jiffies(ms));
}
/* Module exit: the poller neither runs nor is queued (it re-queues itself;
 * cancel_delayed_work_sync handles that). */
void optprobe_foreign_sync(void)
{
	cancel_delayed_work_sync(&optprobe_foreign_dwork);
}

/* auto=1 at insmod: see /sys/kernel/optprobe/auto. */
bool optprobe_auto_param;
module_param_named(auto, optprobe_auto_param, bool, 0400);
MODULE_PARM_DESC(auto, "optimize every eligible kprobe in the system (kprobe_events, perf, BPF, kretprobes)");

/*
 * Entry probes through ftrace (src/entry.rs): one ftrace_ops per probe,
 * filtered to the probed function's call site (sym+8 on a BTI kernel:
 * `bti c; mov x9, x30; bl ftrace_caller`). Never a direct call: those are
 * exclusive per function and BPF fentry needs them. PERMANENT: while it is
 * registered, `sysctl kernel.ftrace_enabled=0` is refused instead of
 * silently stopping hits. The callback guards against recursion itself
 * (ftrace then calls it directly, the cheapest way).
 */
struct optprobe_ftrace {
	struct ftrace_ops ops;
};

/*
 * Is `regs` the frame of an exception taken at EL1 (the BRK path), not a
 * pt_regs a caller built (optprobe_ftrace_func's)? The entry code
 * (kernel_ventry, kernel_entry) pushes PT_REGS_SIZE bytes right below the
 * interrupted stack pointer, which it saves as regs->sp. In C, so that the
 * size is the kernel's own sizeof (src/hit.rs's post-handler asks).
 */
bool notrace optprobe_is_exception_frame(struct pt_regs *regs)
{
	return (unsigned long)regs + sizeof(*regs) == regs->sp;
}
NOKPROBE_SYMBOL(optprobe_is_exception_frame);

#ifdef CONFIG_DYNAMIC_FTRACE_WITH_ARGS
/* `ret`: where an overridden function "returns" from (see below). */
void optprobe_entry_return(void);
asm(".pushsection .text, \"ax\"\n"
    ".balign 4\n"
    ".type optprobe_entry_return, %function\n"
    "optprobe_entry_return:\n"
    "	ret\n"
    ".size optprobe_entry_return, . - optprobe_entry_return\n"
    ".popsection\n");
NOKPROBE_SYMBOL(optprobe_entry_return);

/* 6.12's pt_regs has u64 pmr_save, 6.13+'s u32 pmr (Kbuild detects which). */
#ifdef OPTPROBE_PT_REGS_PMR_SAVE
#define OPTPROBE_REGS_PMR(regs) ((regs)->pmr_save)
#else
#define OPTPROBE_REGS_PMR(regs) ((regs)->pmr)
#endif

#ifdef arch_ftrace_regs
#define optprobe_fregs(fregs) arch_ftrace_regs(fregs)
#else
#define optprobe_fregs(fregs) (fregs)
#endif

/*
 * The ftrace callback: builds a pt_regs from ftrace_regs (x0-x8, fp, lr, sp,
 * the probed function's entry as pc, the rest defined: see README,
 * "Entry probes through ftrace"), runs the hit with preemption disabled (by
 * ftrace's recursion guard) and interrupts as the call left them, as x86's
 * kprobe_ftrace_handler and our trampolines run theirs, and copies back what
 * ftrace restores: x0-x8, fp, lr, and pc when a handler redirected the call.
 *
 * Not with interrupts masked, as the BRK path runs handlers: that cost
 * 80 ns of a 395 ns hit under QEMU (make bench-ablation entry-irq-mask;
 * TCG ends a translation block at each DAIF write). The price: a hit from an
 * interrupt that arrives during a handler is counted missed (with
 * interrupts masked it waited and was delivered), as on the trampoline
 * path and in x86's kprobe_ftrace_handler.
 */
static void notrace optprobe_ftrace_func(unsigned long ip, unsigned long parent_ip,
					 struct ftrace_ops *op, struct ftrace_regs *fregs)
{
	typeof(*optprobe_fregs(fregs)) *f = optprobe_fregs(fregs);
	/*
	 * Filled field by field, with the same result as `= {}` and the
	 * assignments: the whole-struct zeroing first (a memset call) cost
	 * 69 ns of a 384 ns hit under QEMU (make bench-ablation
	 * entry-zero-all).
	 */
	struct pt_regs regs __uninitialized;
	int i, bit;

	for (i = 0; i < 9; i++)
		regs.regs[i] = f->regs[i];
	for (i = 9; i < 29; i++)
		regs.regs[i] = 0;
	regs.regs[29] = f->fp;
	regs.regs[30] = f->lr;
	regs.sp = f->sp;
	regs.pc = 0;
	/* orig_x0 to the end: syscallno, the priority mask, sdei_ttbr1 and the
	 * frame words, whichever this kernel's pt_regs has (from the struct's
	 * start: a memset from &regs.orig_x0 overruns that field as FORTIFY
	 * sees it). */
	memset((char *)&regs + offsetof(struct pt_regs, orig_x0), 0,
	       sizeof(regs) - offsetof(struct pt_regs, orig_x0));
	regs.orig_x0 = f->regs[0];
	regs.syscallno = NO_SYSCALL;
	/* The saved priority mask, as the trampoline saves it: the live one
	 * under pseudo-NMI, else the unmasked value interrupts_enabled()
	 * expects (0 read as masked under pseudo-NMI). */
	OPTPROBE_REGS_PMR(&regs) = system_uses_irq_prio_masking() ?
		read_sysreg_s(SYS_ICC_PMR_EL1) : GIC_PRIO_IRQON;
	regs.pstate = (is_kernel_in_hyp_mode() ? PSR_MODE_EL2h : PSR_MODE_EL1h) |
		      (read_sysreg(daif) & (PSR_D_BIT | PSR_A_BIT | PSR_I_BIT | PSR_F_BIT));
	/* Recursion (a handler calling a probed function) is refused, as
	 * ftrace's own guard does; the guard also disables preemption, which
	 * keeps the task on this CPU while the hit uses per-CPU state. */
	bit = ftrace_test_recursion_trylock(ip, parent_ip);
	if (bit < 0) {
		optprobe_entry_drop_record(op->private, f->sp);
		return;
	}
	switch (optprobe_entry_hit(op->private, &regs)) {
	case 1:
		/*
		 * Return at once (an override): through a `ret`, so that lr as
		 * other ftrace users leave it (function_graph's return hook, a
		 * BPF trampoline's) is where the function returns, as x86 does
		 * with just_return_func.
		 */
		f->pc = (unsigned long)optprobe_entry_return;
		break;
	case 2:
		f->pc = regs.pc;
		break;
	}
	ftrace_test_recursion_unlock(bit);
	for (i = 0; i < 9; i++)
		f->regs[i] = regs.regs[i];
	f->fp = regs.regs[29];
	f->lr = regs.regs[30];
}
NOKPROBE_SYMBOL(optprobe_ftrace_func);

/*
 * Register an ops delivering the function whose call site is `site` to
 * optprobe_entry_hit(probe, ...); its handle goes to *handle. Errors:
 * -EINVAL when `site` is no ftrace call site (notrace), -EBUSY when ftrace
 * is disabled (ftrace_enabled=0), -ENOMEM.
 */
int optprobe_ftrace_attach(void *probe, unsigned long site, void **handle)
{
	struct optprobe_ftrace *e = kzalloc(sizeof(*e), GFP_KERNEL);
	int ret;

	if (!e)
		return -ENOMEM;
	e->ops.func = optprobe_ftrace_func;
	e->ops.flags = FTRACE_OPS_FL_PERMANENT;
	e->ops.private = probe;
	ret = ftrace_set_filter_ip(&e->ops, site, 0, 0);
	if (!ret) {
		ret = register_ftrace_function(&e->ops);
		if (ret)
			ftrace_free_filter(&e->ops);
	}
	if (ret) {
		/* Never registered: nothing can be running it. */
		kfree(e);
		return ret;
	}
	*handle = e;
	return 0;
}

/*
 * Unregister and free. unregister_ftrace_function() returns only once no
 * CPU can be in the callback (a module's ops is FTRACE_OPS_FL_DYNAMIC:
 * ftrace waits for RCU-tasks itself). Returns the error, and then leaks the
 * ops, when ftrace refused to unregister it.
 */
int optprobe_ftrace_detach(void *handle)
{
	struct optprobe_ftrace *e = handle;
	int ret = unregister_ftrace_function(&e->ops);

	if (ret)
		return ret;
	ftrace_free_filter(&e->ops);
	kfree(e);
	return 0;
}
#else
int optprobe_ftrace_attach(void *probe, unsigned long site, void **handle) { return -EOPNOTSUPP; }
int optprobe_ftrace_detach(void *handle) { return 0; }
#endif

/* The hit path: trampoline -> dispatch [-> callback -> pre-handler] -> handler. */
NOKPROBE_SYMBOL(optprobe_dispatch);
NOKPROBE_SYMBOL(optprobe_dispatch_el2);
NOKPROBE_SYMBOL(optprobe_callback);
NOKPROBE_SYMBOL(optprobe_kp_pre_handler);
NOKPROBE_SYMBOL(optprobe_kp_post_handler);
NOKPROBE_SYMBOL(optprobe_rust_dispatch);
NOKPROBE_SYMBOL(optprobe_entry_hit);
NOKPROBE_SYMBOL(optprobe_entry_drop_record);
static_assert(KSYM_SYMBOL_LEN <= OPTPROBE_SYMBOL_BUF);

#ifdef OPTPROBE_TEST_HOOKS
int optprobe_test_request(unsigned long addr, bool on);
EXPORT_SYMBOL_GPL(optprobe_test_request);
int optprobe_test_entry_text(unsigned long addr, bool brk);
EXPORT_SYMBOL_GPL(optprobe_test_entry_text);
unsigned int optprobe_test_stall_next_brk(unsigned int ms);
EXPORT_SYMBOL_GPL(optprobe_test_stall_next_brk);
bool optprobe_test_skip_site_after_brk(bool on);
EXPORT_SYMBOL_GPL(optprobe_test_skip_site_after_brk);
void optprobe_test_mdelay(unsigned int ms) { mdelay(ms); }
NOKPROBE_SYMBOL(optprobe_test_mdelay);
/*
 * Test-only delay points (src/test_hooks.rs): delay_at=POINT, delay_ms=N.
 * Absent from the default build.
 */
static char optprobe_delay_at[32];
module_param_string(delay_at, optprobe_delay_at, sizeof(optprobe_delay_at), 0600);
MODULE_PARM_DESC(delay_at, "test builds: the point to sleep at");
static unsigned int optprobe_delay_ms;
module_param_named(delay_ms, optprobe_delay_ms, uint, 0600);
MODULE_PARM_DESC(delay_ms, "test builds: how long to sleep there (ms)");

/*
 * patch_fail_after=N: every text-patch batch writes only its first N entries
 * and then fails, as aarch64_insn_patch_text() does when a write fails
 * (earlier entries stay written). -1: off.
 */
static int optprobe_patch_fail_after = -1;
module_param_named(patch_fail_after, optprobe_patch_fail_after, int, 0600);
MODULE_PARM_DESC(patch_fail_after, "test builds: fail text patching after N entries (-1: off)");

int optprobe_test_patch_limit(void)
{
	return READ_ONCE(optprobe_patch_fail_after);
}

void optprobe_test_delay(const char *point)
{
	unsigned int ms = READ_ONCE(optprobe_delay_ms);

	if (!ms || !sysfs_streq(optprobe_delay_at, point))
		return;
	pr_info("optprobe: test hook: %u ms at %s\n", ms, point);
	msleep(ms);
	pr_info("optprobe: test hook: %s done\n", point);
}
#endif

/* selftest=1: exercise the Rust API at load (see rust_api_selftest). */
bool optprobe_selftest_param;
module_param_named(selftest, optprobe_selftest_param, bool, 0400);
MODULE_PARM_DESC(selftest, "run the Rust API self-test at load");

/* probes=: the same syntax as the control file, ';'-separated, at insmod. */
char optprobe_probes_param[1024];
module_param_string(probes, optprobe_probes_param, sizeof(optprobe_probes_param), 0400);
MODULE_PARM_DESC(probes, "probes to attach at load, ';'-separated: p[:NAME] SYMBOL[+OFFS]");

/*
 * A bin attribute, so writes of any size arrive (in pieces of at most a page,
 * each with its offset and file) instead of failing over a page.
 */
/*
 * The bin_attribute callbacks take a const attribute since 6.13 and a
 * mutable one before. Each callback comes in both shapes, and
 * OPTPROBE_BIN_CALLBACK picks the one the kernel's field has (feature
 * detection on the field's type, not on the version).
 */
#define OPTPROBE_BIN_CALLBACK(field, const_fn, mut_fn)				\
	_Generic(((struct bin_attribute *)NULL)->field,				\
		 typeof(&const_fn): const_fn,					\
		 default: mut_fn)
#define OPTPROBE_BIN_CALLBACKS(name, body)					\
	static ssize_t __maybe_unused name##_const(struct file *file,		\
			struct kobject *kobj, const struct bin_attribute *attr,	\
			char *buf, loff_t off, size_t count)			\
	{ return body; }							\
	static ssize_t __maybe_unused name##_mut(struct file *file,		\
			struct kobject *kobj, struct bin_attribute *attr,	\
			char *buf, loff_t off, size_t count)			\
	{ return body; }

OPTPROBE_BIN_CALLBACKS(control_write,
	optprobe_sysfs_control_write(file, buf, off, count, count == PAGE_SIZE))

static ssize_t stats_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	return optprobe_sysfs_stats_show(buf, PAGE_SIZE);
}

/* A bin attribute: the listing can exceed sysfs's one-page limit. */
OPTPROBE_BIN_CALLBACKS(probes_read, optprobe_sysfs_probes_read(buf, off, count))

/* auto: 0/1, root only; writing applies it before returning. */
static ssize_t auto_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", optprobe_foreign_auto() ? 1 : 0);
}
static ssize_t auto_store(struct kobject *kobj, struct kobj_attribute *attr,
			  const char *buf, size_t count)
{
	bool on;
	int ret;

	if (kstrtobool(buf, &on)) {
		pr_warn("optprobe: auto: expected 0 or 1\n");
		return -EINVAL;
	}
	ret = optprobe_foreign_set_auto(on);
	return ret ? ret : count;
}
static struct kobj_attribute auto_attr = __ATTR(auto, 0600, auto_show, auto_store);
/* Root only: writing attaches code to the kernel; the listing has addresses. */
static struct bin_attribute control_attr = {
	.attr = { .name = "control", .mode = 0200 },
	.write = OPTPROBE_BIN_CALLBACK(write, control_write_const, control_write_mut),
};
static struct kobj_attribute stats_attr = __ATTR(stats, 0400, stats_show, NULL);
static struct bin_attribute probes_attr = {
	.attr = { .name = "probes", .mode = 0400 },
	.read = OPTPROBE_BIN_CALLBACK(read, probes_read_const, probes_read_mut),
};
static struct attribute *optprobe_attrs[] = {
	&stats_attr.attr,
	&auto_attr.attr,
	NULL,
};
/* The element type of attribute_group.bin_attrs: const since 6.13. */
static typeof(*((struct attribute_group *)NULL)->bin_attrs) optprobe_bin_attrs[] = {
	&control_attr,
	&probes_attr,
	NULL,
};
static const struct attribute_group optprobe_group = {
	.attrs = optprobe_attrs,
	.bin_attrs = optprobe_bin_attrs,
};

const struct attribute_group *optprobe_attr_group(void) { return &optprobe_group; }

/* C ABI: implemented in Rust, exported here (see include/optprobe.h). */
EXPORT_SYMBOL_GPL(optprobe_register);
EXPORT_SYMBOL_GPL(optprobe_register_batch);
EXPORT_SYMBOL_GPL(optprobe_unregister);
EXPORT_SYMBOL_GPL(optprobe_unregister_batch);
EXPORT_SYMBOL_GPL(optprobe_state);
EXPORT_SYMBOL_GPL(optprobe_reason);
EXPORT_SYMBOL_GPL(optprobe_stop_machine_count);
EXPORT_SYMBOL_GPL(optprobe_get_stats);
EXPORT_SYMBOL_GPL(optprobe_enable);
EXPORT_SYMBOL_GPL(optprobe_disable);
EXPORT_SYMBOL_GPL(optprobe_hits);
EXPORT_SYMBOL_GPL(optprobe_missed);
