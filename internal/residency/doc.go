// Package residency takes the executable's start-up-only pages out of a process's resident set once the process is
// ready, so an idle `tide broker` is charged for the pages it uses, not for the ones package initialisation touched.
//
// Why: tide is one ~95 MB executable. Before main runs, the initialisation of every linked package (Knative and
// Kubernetes API types and schemes, client-go, Prometheus, nats-server for `tide bench mq`, ...) touches code,
// read-only data and pc-value tables all over the file, and the kernel maps each touched page, and on Linux 6.x the
// whole page-cache folio around it (64 KiB fault-around, or larger folios, depending on how the page cache was
// filled), into the process. An idle `tide broker` therefore shows 35–43 MiB of file-backed RSS although the broker
// itself, linked alone, needs about 5 MiB. Those pages are never touched again.
//
// What it does (Linux): after the caller's start-up is done, ReleaseStartupPages runs the collector and returns
// freed heap to the OS (debug.FreeOSMemory), then calls madvise(MADV_DONTNEED) over every read-only, private
// mapping of the executable file. Pages the process still uses fault back in on their next access: minor faults
// from the page cache, no I/O, microseconds each. What stays resident afterwards is what the process touches.
//
// Why it is safe: a read-only private file mapping holds nothing but copies of the file's pages in the page
// cache; MADV_DONTNEED on it drops this process's page-table entries and the kernel refills them from the file on
// the next access, so no data can be lost. A private mapping can hold private (anonymous) copies only if something
// wrote to it (a debugger's breakpoints written through ptrace): mappings whose smaps line shows any Anonymous
// pages are skipped, as are writable mappings (.data, .bss, whose pages the program changed) and shared mappings.
// MADV_DONTNEED never evicts the page cache itself (unlike MADV_PAGEOUT), so other processes and the next start of
// the executable are unaffected.
//
// What it is not: the pages are not freed from the machine (they stay in the page cache, as every executable's
// pages do after it ran), the start-up cost is not avoided (it is paid, then forgotten), and a busy process faults
// its hot pages back in. It changes what RSS reports for an idle process, which is what the footprint targets
// measure and what container memory accounting of mapped files sees. Set TIDE_RELEASE_STARTUP_PAGES=off to turn
// it off. On other systems it does nothing.
package residency
