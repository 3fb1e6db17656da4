package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// versionLine is what `tide version` prints: the release version set with -ldflags (Version) or else the module
// version the go command recorded, then the VCS revision, its time and whether the tree was modified (when the build
// recorded them: a `go build` inside a git checkout without -buildvcs=false), the Go version and the platform.
//
//	tide v0.3.0 (commit 358a5001a2b3, 2026-12-07T16:00:00Z) go1.26.8 linux/amd64
//	tide devel go1.26.8 linux/amd64
func versionLine(release string, info *debug.BuildInfo, ok bool) string {
	v := release
	var extra []string
	goVersion := runtime.Version()
	if ok && info != nil {
		if v == "" || v == "dev" {
			v = info.Main.Version
		}
		if info.GoVersion != "" {
			goVersion = info.GoVersion
		}
		settings := map[string]string{}
		for _, s := range info.Settings {
			settings[s.Key] = s.Value
		}
		if rev := settings["vcs.revision"]; rev != "" {
			if len(rev) > 12 {
				rev = rev[:12]
			}
			extra = append(extra, "commit "+rev)
		}
		if t := settings["vcs.time"]; t != "" {
			extra = append(extra, t)
		}
		if settings["vcs.modified"] == "true" {
			extra = append(extra, "modified")
		}
	}
	if v == "" || v == "dev" || v == "(devel)" {
		v = "devel"
	}
	line := "tide " + v
	if len(extra) > 0 {
		line += " (" + strings.Join(extra, ", ") + ")"
	}
	return fmt.Sprintf("%s %s %s/%s", line, goVersion, runtime.GOOS, runtime.GOARCH)
}
