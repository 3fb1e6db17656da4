// Package residency takes the executable's start-up-only pages out of a process's resident set once the process is
// ready, so an idle `tide broker` is charged for the pages it uses, not for the ones package initialisation touched.
//
// Why: tide is one ~100 MB executable. Before main runs, the initialisation of every linked package (Knative and
// Kubernetes API types and schemes, client-go, Prometheus, nats-server for `tide bench mq`, ...) touches code,
// read-only data and pc-value tables all over the file. The kernel maps each touched page into the process, and
// with it the rest of its page-cache folio (64 KiB of fault-around, or a whole large folio: how large depends on
// how the page cache was filled, a freshly linked binary differs from a copied one). An idle `tide broker`
// therefore shows 35–50 MiB of file-backed RSS, 96% of it mapped before main starts, although the broker linked
// alone needs about 5 MiB. Those pages are never touched again.
//
// What it does (Linux): after the caller's start-up is done, ReleaseStartupPages calls madvise(MADV_DONTNEED)
// over every read-only, private mapping of the executable file (text, read-only data, pc-value tables). Pages the
// process still uses fault back in on their next access: minor faults from the page cache, no I/O. What stays
// resident afterwards is what the process touches (an idle broker: 7–12 MiB of the file).
//
// Why it is safe: a read-only private file mapping holds nothing but the file's pages from the page cache;
// MADV_DONTNEED on it drops this process's page-table entries and the kernel maps the same pages again on the next
// access, so nothing can be lost. A private mapping holds private (anonymous) copies only if something wrote to
// it (a debugger's breakpoints written through ptrace): mappings whose smaps entry shows any Anonymous pages are
// skipped, as are writable mappings (.data, .bss, which the program changes) and shared mappings. MADV_DONTNEED
// never evicts the page cache itself, so other processes and the next start of the executable are unaffected;
// MADV_PAGEOUT would evict it (the next start of tide would read the file from disk again), and MADV_COLD only
// ages the pages on the LRU: they stay mapped and counted in RSS.
//
// It leaves the heap alone: a debug.FreeOSMemory at the same point was measured to change an idle broker's
// anonymous RSS by about 0.1 MiB (the 4 MB that package initialisation allocates is mostly live: registered
// schemes and types), not worth a forced collection.
//
// What it is not: the pages are not freed from the machine. They stay in the page cache, as every executable's
// pages do after it ran, and a cgroup's memory.current, which counts page cache, does not change; what changes is
// that they are no longer mapped, so under memory pressure they are ordinary clean cache the kernel reclaims
// first. The start-up cost is paid, then forgotten, not avoided, and a busy process faults its hot pages back in.
// It changes what RSS (ps, top, /proc/PID/status) reports for a process, which is what the footprint target
// measures. Set TIDE_RELEASE_STARTUP_PAGES=off to turn it off. On other systems it does nothing.
package residency
