//! What the benchmarks ran on, printed with their results.

use std::fs;

/// `nproc`, the CPU model, total memory and the load average, one line each.
pub fn describe() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let model = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let memory = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("MemTotal:"))
                .map(|line| line.trim_start_matches("MemTotal:").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    format!(
        "- CPUs (available parallelism): {cpus}\n- CPU model: {model}\n- memory: {memory}\n- \
         load average (1, 5, 15 min): {}",
        load_average()
    )
}

/// The 1, 5 and 15 minute load averages from /proc/loadavg.
pub fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_owned())
}
