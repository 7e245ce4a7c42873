package loadbench

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/<pid>/stat. It is
// 100 on every Linux architecture Go supports (the kernel ABI fixes it).
const clockTicks = 100

// ProcUsage is the CPU time and memory of a process tree.
type ProcUsage struct {
	CPUSecs float64 // utime+stime of the process and its children, seconds
	RSS     int64   // VmRSS summed over the tree, bytes
	HWM     int64   // VmHWM (peak RSS) summed over the tree, bytes
}

// ReadProcUsage reads /proc for pid and its direct children (nginx's
// workers, say). Children that exited are not counted (their CPU lands in
// the parent's cutime, which this does not add: a worker dying mid-run
// would be a failure worth seeing anyway).
func ReadProcUsage(pid int) (ProcUsage, error) {
	var u ProcUsage
	pids := append([]int{pid}, childPids(pid)...)
	for i, p := range pids {
		cpu, err := readCPUSecs(p)
		if err != nil {
			if i == 0 {
				return u, err
			}
			continue // a child went away between listing and reading
		}
		u.CPUSecs += cpu
		rss, hwm, err := readMem(p)
		if err == nil {
			u.RSS += rss
			u.HWM += hwm
		}
	}
	return u, nil
}

// parseStatCPU returns utime+stime in seconds from the text of
// /proc/<pid>/stat. The command name may contain spaces and ')' so the
// fields are counted from the last ')'.
func parseStatCPU(stat string) (float64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed stat: %q", stat)
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("short stat: %q", stat)
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bad utime/stime in stat: %q", stat)
	}
	return float64(ut+st) / clockTicks, nil
}

func readCPUSecs(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(b))
}

// parseStatus returns VmRSS and VmHWM in bytes from /proc/<pid>/status.
func parseStatus(status string) (rss, hwm int64) {
	sc := bufio.NewScanner(strings.NewReader(status))
	for sc.Scan() {
		line := sc.Text()
		var dst *int64
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			dst = &rss
		case strings.HasPrefix(line, "VmHWM:"):
			dst = &hwm
		default:
			continue
		}
		f := strings.Fields(line)
		if len(f) >= 2 {
			if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				*dst = kb * 1024
			}
		}
	}
	return rss, hwm
}

func readMem(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	rss, hwm = parseStatus(string(b))
	return rss, hwm, nil
}

// childPids lists the direct children of pid from
// /proc/<pid>/task/*/children.
func childPids(pid int) []int {
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, s := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(s); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}
