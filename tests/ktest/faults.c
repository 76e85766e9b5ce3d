// SPDX-License-Identifier: GPL-2.0
/*
 * optprobe_ktest: allocation failures at every step of attach, disable,
 * enable and detach (issue 11), while the target's spinner threads run
 * through the probed function. Uses the task's fail-nth counter
 * (CONFIG_FAULT_INJECTION; failslab must take GFP_KERNEL allocations:
 * tests/kselftest/79_fault_injection.sh sets that up). After each step the
 * outcome must be whole: a failed call changed nothing, a successful one did
 * all it says, and in the end nothing is left.
 */
#include "ktest.h"

#ifdef CONFIG_FAULT_INJECTION

/* Run op with the n-th fault-injection point of this task failing; reports
 * whether the n-th point was reached. */
#define WITH_FAIL_NTH(n, reached, op) do {				\
	WRITE_ONCE(current->fail_nth, (n));				\
	op;								\
	(reached) = READ_ONCE(current->fail_nth) == 0;			\
	WRITE_ONCE(current->fail_nth, 0);				\
} while (0)

static atomic_t fault_hits;

static int fill_descs(struct optprobe_desc *d, int n)
{
	static const unsigned int offs[] = { 16, 20, 24 };
	int i;

	for (i = 0; i < n; i++) {
		d[i] = (struct optprobe_desc) {
			.symbol = "optprobe_target_work", .offset = offs[i], .name = "fault",
			.handler = count_handler, .data = &fault_hits,
		};
	}
	return n;
}

int case_faults(void)
{
	struct optprobe_desc d[3];
	struct optprobe_stats before, now;
	int n, ret = 0, reached, failed[4] = { 0 }, points[4] = { 0 };
	unsigned long hits;

	optprobe_get_stats(&before);
	/* attach: all or nothing. */
	for (n = 1; n < 500; n++) {
		int r;

		fill_descs(d, 3);
		WITH_FAIL_NTH(n, reached, r = optprobe_register_batch(d, 3));
		optprobe_get_stats(&now);
		if (r) {
			failed[0]++;
			CHECK(now.probes == before.probes, "attach failed (%d) at point %d but %lu probes are left",
			      r, n, now.probes - before.probes);
			CHECK(reached, "attach failed (%d) with no fault injected", r);
			continue;
		}
		CHECK(now.probes == before.probes + 3, "attach succeeded with %lu probes", now.probes - before.probes);
		optprobe_unregister_batch((struct optprobe *[]){ d[0].probe, d[1].probe, d[2].probe }, 3);
		if (!reached)
			break;
	}
	points[0] = n;
	/* disable and enable of an attached probe: whole or not at all. */
	fill_descs(d, 1);
	ret = optprobe_register(&d[0]);
	if (ret)
		return ret;
	for (n = 1; n < 500; n++) {
		int r, st;

		WITH_FAIL_NTH(n, reached, r = optprobe_disable(d[0].probe));
		st = optprobe_state(d[0].probe);
		if (r) {
			failed[1]++;
			CHECK(st != OPTPROBE_STATE_DISABLED, "disable failed (%d) but the probe is disabled", r);
		} else {
			CHECK(st == OPTPROBE_STATE_DISABLED, "disable succeeded, state %d", st);
			WITH_FAIL_NTH(n, reached, r = optprobe_enable(d[0].probe));
			st = optprobe_state(d[0].probe);
			if (r) {
				failed[2]++;
				CHECK(st == OPTPROBE_STATE_DISABLED, "enable failed (%d), state %d", r, st);
				CHECK(!optprobe_enable(d[0].probe), "enable without faults failed");
			} else {
				CHECK(st != OPTPROBE_STATE_DISABLED, "enable succeeded, still disabled");
			}
		}
		if (!reached)
			break;
	}
	points[1] = n;
	hits = optprobe_hits(d[0].probe);
	optprobe_unregister(d[0].probe);
	/* detach never fails: the probe is gone, whatever fails inside. */
	for (n = 1; n < 500; n++) {
		fill_descs(d, 1);
		ret = optprobe_register(&d[0]);
		if (ret)
			return ret;
		WITH_FAIL_NTH(n, reached, optprobe_unregister(d[0].probe));
		CHECK(optprobe_state(d[0].probe) == -EINVAL, "point %d: the probe outlived its unregister", n);
		if (!reached)
			break;
	}
	points[3] = n;
	optprobe_get_stats(&now);
	CHECK(now.probes == before.probes, "%lu probes left", now.probes - before.probes);
	CHECK(now.trampoline_pages == before.trampoline_pages, "trampoline pages %lu, were %lu",
	      now.trampoline_pages, before.trampoline_pages);
	pr_info("optprobe_ktest: faults: attach %d points (%d failed cleanly), disable/enable %d points (%d, %d), detach %d points; %lu hits meanwhile; nothing left\n",
		points[0], failed[0], points[1], failed[1], failed[2], points[3], hits);
	return 0;
out:
	return ret;
}

#else

int case_faults(void)
{
	pr_info("optprobe_ktest: faults: SKIP: needs CONFIG_FAULT_INJECTION (make test-debug)\n");
	return 0;
}

#endif
