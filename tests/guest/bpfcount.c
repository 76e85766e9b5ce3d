// SPDX-License-Identifier: GPL-2.0
/*
 * bpfcount: a BPF kprobe program, attached the way bpftrace and libbpf
 * attach one (perf_event_open on the kprobe PMU, then
 * PERF_EVENT_IOC_SET_BPF), that counts its hits into an array map. Raw
 * bpf() and perf_event_open() syscalls, no libc, no libbpf, so the test bed
 * builds it for the arm64 guest with clang alone.
 *
 *   bpfcount SYMBOL OFFSET FIRE GO...
 *
 * Attaches at SYMBOL+OFFSET and prints "ready". Then for each GO file in
 * turn: waits until it exists, writes its contents ("START COUNT") to FIRE
 * (the target module's call trigger), prints "count N" (the map's total so
 * far) and creates GO.done. Exits 0, or 10+ on a failed step, after
 * printing which.
 */
#include "freestanding.h"

#define O_WRONLY 1
#define O_CREAT 0100

#define BPF_MAP_CREATE 0
#define BPF_MAP_LOOKUP_ELEM 1
#define BPF_PROG_LOAD 5
#define BPF_MAP_TYPE_ARRAY 2
#define BPF_PROG_TYPE_KPROBE 2
#define PERF_EVENT_IOC_ENABLE 0x2400
#define PERF_EVENT_IOC_SET_BPF 0x40042408

typedef unsigned long long u64;
typedef unsigned int u32;

static void zero(void *p, long n)
{
	volatile char *c = p;

	while (n--)
		*c++ = 0;
}

static long len(const char *s)
{
	long n = 0;

	while (s[n])
		n++;
	return n;
}

static void say(const char *s) { sys3(__NR_write, 1, s, len(s)); }

static void say_num(const char *what, u64 v)
{
	char buf[48], tmp[24];
	long n = 0, i = 0;

	while (what[i]) {
		buf[i] = what[i];
		i++;
	}
	do {
		tmp[n++] = '0' + v % 10;
		v /= 10;
	} while (v);
	while (n)
		buf[i++] = tmp[--n];
	buf[i++] = '\n';
	sys3(__NR_write, 1, buf, i);
}

static void die(const char *what, long code, long err)
{
	say("bpfcount: ");
	say(what);
	say_num(" failed, errno ", -err);
	sys3(__NR_exit, code, 0, 0);
}

static long parse(const char *s)
{
	long v = 0;

	while (*s >= '0' && *s <= '9')
		v = v * 10 + (*s++ - '0');
	return v;
}

/* Read a small file into buf (NUL-terminated); returns the length or < 0. */
static long slurp(const char *path, char *buf, long size)
{
	long fd = sys3(__NR_openat, AT_FDCWD, path, 0), n;

	if (fd < 0)
		return fd;
	n = sys3(__NR_read, fd, buf, size - 1);
	sys3(__NR_close, fd, 0, 0);
	buf[n > 0 ? n : 0] = 0;
	return n;
}

struct bpf_insn {
	unsigned char code;
	unsigned char regs;	/* src << 4 | dst */
	short off;
	int imm;
};
#define INSN(c, dst, src, o, i) { (c), (unsigned char)(((src) << 4) | (dst)), (o), (i) }

static void run(long argc, char **argv, char **envp)
{
	u64 attr[16], pattr[16];
	u32 key = 0;
	u64 value = 0;
	char buf[64], done[256];
	long map, prog, ev, r, i, type;

	if (argc < 5)
		die("usage: bpfcount SYMBOL OFFSET FIRE GO...;", 2, 0);
	r = slurp("/sys/bus/event_source/devices/kprobe/type", buf, sizeof(buf));
	if (r <= 0)
		die("reading the kprobe PMU type", 10, r);
	type = parse(buf);

	zero(attr, sizeof(attr));
	((u32 *)attr)[0] = BPF_MAP_TYPE_ARRAY;
	((u32 *)attr)[1] = 4;		/* key_size */
	((u32 *)attr)[2] = 8;		/* value_size */
	((u32 *)attr)[3] = 1;		/* max_entries */
	map = sys3(__NR_bpf, BPF_MAP_CREATE, attr, sizeof(attr));
	if (map < 0)
		die("BPF_MAP_CREATE", 11, map);

	/* key = 0; v = lookup(map, &key); if (v) atomic v += 1; return 0 */
	struct bpf_insn insns[] = {
		INSN(0xb7, 1, 0, 0, 0),		/* r1 = 0 */
		INSN(0x63, 10, 1, -4, 0),	/* *(u32 *)(r10 - 4) = r1 */
		INSN(0xbf, 2, 10, 0, 0),	/* r2 = r10 */
		INSN(0x07, 2, 0, 0, -4),	/* r2 += -4 */
		INSN(0x18, 1, 1, 0, (int)map),	/* r1 = map (BPF_PSEUDO_MAP_FD) */
		INSN(0x00, 0, 0, 0, 0),
		INSN(0x85, 0, 0, 0, 1),		/* call bpf_map_lookup_elem */
		INSN(0x15, 0, 0, 2, 0),		/* if r0 == 0 goto +2 */
		INSN(0xb7, 1, 0, 0, 1),		/* r1 = 1 */
		INSN(0xdb, 0, 1, 0, 0),		/* lock *(u64 *)(r0 + 0) += r1 */
		INSN(0xb7, 0, 0, 0, 0),		/* r0 = 0 */
		INSN(0x95, 0, 0, 0, 0),		/* exit */
	};
	static char log[4096];
	zero(attr, sizeof(attr));
	((u32 *)attr)[0] = BPF_PROG_TYPE_KPROBE;
	((u32 *)attr)[1] = sizeof(insns) / sizeof(insns[0]);
	attr[1] = (u64)(unsigned long)insns;
	attr[2] = (u64)(unsigned long)"GPL";
	((u32 *)attr)[6] = 1;		/* log_level */
	((u32 *)attr)[7] = sizeof(log);
	attr[4] = (u64)(unsigned long)log;
	prog = sys3(__NR_bpf, BPF_PROG_LOAD, attr, sizeof(attr));
	if (prog < 0) {
		say(log);
		die("BPF_PROG_LOAD", 12, prog);
	}

	zero(pattr, sizeof(pattr));
	((u32 *)pattr)[0] = type;
	((u32 *)pattr)[1] = 112;	/* PERF_ATTR_SIZE_VER5 */
	pattr[7] = (u64)(unsigned long)argv[1];	/* config1: kprobe_func */
	pattr[8] = parse(argv[2]);		/* config2: probe_offset */
	ev = sys6(__NR_perf_event_open, (long)pattr, -1, 0, -1, 0, 0);
	if (ev < 0)
		die("perf_event_open (kprobe PMU)", 13, ev);
	r = sys3(__NR_ioctl, ev, PERF_EVENT_IOC_SET_BPF, prog);
	if (r < 0)
		die("PERF_EVENT_IOC_SET_BPF", 14, r);
	r = sys3(__NR_ioctl, ev, PERF_EVENT_IOC_ENABLE, 0);
	if (r < 0)
		die("PERF_EVENT_IOC_ENABLE", 15, r);
	say("ready\n");

	for (i = 4; i < argc; i++) {
		u64 ts[2] = { 0, 20000000 };
		long fd, n = len(argv[i]), j;

		while ((r = slurp(argv[i], buf, sizeof(buf))) <= 0)
			sys3(__NR_nanosleep, ts, 0, 0);
		fd = sys3(__NR_openat, AT_FDCWD, argv[3], O_WRONLY);
		if (fd < 0 || sys3(__NR_write, fd, buf, r) < 0)
			die("firing the target", 16, fd);
		sys3(__NR_close, fd, 0, 0);
		zero(attr, sizeof(attr));
		((u32 *)attr)[0] = map;
		attr[1] = (u64)(unsigned long)&key;
		attr[2] = (u64)(unsigned long)&value;
		r = sys3(__NR_bpf, BPF_MAP_LOOKUP_ELEM, attr, sizeof(attr));
		if (r < 0)
			die("BPF_MAP_LOOKUP_ELEM", 17, r);
		say_num("count ", value);
		for (j = 0; j < n && j < 250; j++)
			done[j] = argv[i][j];
		done[j] = 0;
		for (r = 0; r < 5; r++)
			done[j + r] = ".done"[r];
		done[j + 5] = 0;
		fd = sys3(__NR_openat, AT_FDCWD, done, O_WRONLY | O_CREAT);
		sys3(__NR_close, fd, 0, 0);
	}
	sys3(__NR_exit, 0, 0, 0);
}

