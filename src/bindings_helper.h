/* SPDX-License-Identifier: GPL-2.0 */
/* Headers optprobe binds to, beyond what the `kernel` crate covers. */
#include <linux/kprobes.h>
#include <linux/kobject.h>
#include <linux/sysfs.h>
#include <linux/vmalloc.h>
#include <linux/percpu.h>
#include <linux/cpu.h>
#include <linux/mutex.h>
#include <linux/module.h>
#include <linux/notifier.h>
#include <linux/rcupdate.h>
#include <linux/rcupdate_wait.h>
#include <linux/stacktrace.h>
#include <linux/kallsyms.h>
#include <linux/uidgid.h>
#include <linux/capability.h>
#include <linux/delay.h>
#include <asm/ptrace.h>
#include "glue.h"
