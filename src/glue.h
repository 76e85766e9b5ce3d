/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C glue for optprobe: kernel static inlines and macros that Rust cannot
 * call directly. Every function here is a one-liner; the logic is in Rust.
 */
#ifndef OPTPROBE_GLUE_H
#define OPTPROBE_GLUE_H

#include <linux/types.h>

/* Buffer size for sprint_symbol(); glue.c checks it covers KSYM_SYMBOL_LEN. */
#define OPTPROBE_SYMBOL_BUF 1024

struct pt_regs;
struct attribute_group;

bool optprobe_percpu_in_tpidr_el2(void);
void optprobe_preempt_resched(void);
void *optprobe_per_cpu_ptr(void *percpu_ptr, int cpu);
struct mutex;
void optprobe_mutex_lock(struct mutex *lock);
void optprobe_mutex_unlock(struct mutex *lock);
void optprobe_cpus_read_lock(void);
void optprobe_cpus_read_unlock(void);
void *optprobe_alloc_percpu_u64(void);
int optprobe_nr_cpu_ids(void);
int optprobe_cpu_possible(int cpu);
unsigned long optprobe_vmalloc_end(void);
unsigned long optprobe_modules_vaddr(void);
struct kprobe;
struct module;
unsigned long optprobe_call_kallsyms_lookup_name(void *fn, const char *name);
int optprobe_call_patch_text(void *fn, void **addrs, u32 *insns, int cnt);
void *optprobe_call_insn_copy(void *fn, void *dst, void *src, size_t len);
void *optprobe_call_vmalloc_range(void *fn, unsigned long start, unsigned long end);
int optprobe_call_set_memory_rox(void *ro, void *x, unsigned long addr);
struct kprobe *optprobe_call_get_kprobe(void *fn, void *addr);
int optprobe_call_lookup_size_offset(void *fn, unsigned long addr,
				     unsigned long *size, unsigned long *offset);
bool optprobe_within_module(unsigned long addr, struct module *mod);
bool optprobe_within_module_init(unsigned long addr, struct module *mod);
unsigned long optprobe_page_size(void);
bool optprobe_has_pan(void);
void optprobe_pin_module(void);
void optprobe_unpin_module(void);
bool optprobe_uses_prio_masking(void);
const struct attribute_group *optprobe_attr_group(void);
bool optprobe_has_syslog(void);

void optprobe_request_fallback(void);
void optprobe_fallback_sync(void);

/* Rust entry points used by glue.c (and blacklisted from kprobes there). */
int optprobe_kp_pre_handler(struct kprobe *kp, struct pt_regs *regs);
void optprobe_kp_post_handler(struct kprobe *kp, struct pt_regs *regs, unsigned long flags);
void optprobe_rust_dispatch(void *data, struct pt_regs *regs);
void optprobe_callback(void *probe, struct pt_regs *regs);
void optprobe_dispatch(void *probe, struct pt_regs *regs);
void optprobe_dispatch_el2(void *probe, struct pt_regs *regs);
void optprobe_fallback_work(void);
int optprobe_entry_hit(void *probe, struct pt_regs *regs);
void optprobe_entry_drop_record(void *probe, unsigned long sp);
/* The BRK path's pt_regs (an EL1 exception frame), not a built one. */
bool optprobe_is_exception_frame(struct pt_regs *regs);
/* Entry probes through ftrace (src/entry.rs). */
int optprobe_ftrace_attach(void *probe, unsigned long site, void **handle);
int optprobe_ftrace_detach(void *handle);
bool optprobe_bti_enforced(void);
int optprobe_walk_kprobe_table(void *table, unsigned long len,
			       int (*fn)(void *ctx, struct kprobe *kp), void *ctx);
void optprobe_foreign_kick(unsigned int ms);
void optprobe_foreign_sync(void);
extern bool optprobe_auto_param;
/* Rust entry points of src/foreign.rs. */
unsigned int optprobe_foreign_work(void);
bool optprobe_foreign_auto(void);
int optprobe_foreign_set_auto(bool on);
struct file;
long optprobe_sysfs_control_write(struct file *file, const char *buf, long long off,
				  unsigned long count, bool full);
long optprobe_sysfs_probes_read(char *buf, long long offset, unsigned long count);
long optprobe_sysfs_stats_show(char *buf, unsigned long size);

/* Test builds only (OPTPROBE_TEST_HOOKS=1): sleep at a named point. */
void optprobe_test_delay(const char *point);
int optprobe_test_patch_limit(void);
void optprobe_test_mdelay(unsigned int ms);

extern char optprobe_probes_param[];
extern bool optprobe_selftest_param;

#endif
