//! CPU facts from procfs (`<proc>/cpuinfo`): model, vendor and logical CPU count.

use super::model::CpuFacts;

/// Parse `/proc/cpuinfo`. x86 names the model `model name` and the vendor `vendor_id`;
/// arm64 has no model name, so its `CPU implementer`/`CPU part` pair is reported instead.
pub fn parse_cpuinfo(text: &str) -> CpuFacts {
    let mut facts = CpuFacts::default();
    let mut implementer = String::new();
    let mut part = String::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "processor" if value.parse::<u32>().is_ok() => facts.logical_cpus += 1,
            "model name" | "Model Name" if facts.model.is_empty() => facts.model = value.into(),
            "vendor_id" if facts.vendor.is_empty() => facts.vendor = value.into(),
            "CPU implementer" if implementer.is_empty() => implementer = value.into(),
            "CPU part" if part.is_empty() => part = value.into(),
            _ => {}
        }
    }
    if facts.model.is_empty() && !implementer.is_empty() {
        facts.model = format!("implementer {implementer} part {part}");
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x86() {
        let text = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9654\n\n\
                    processor\t: 1\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9654\n";
        let f = parse_cpuinfo(text);
        assert_eq!(f.model, "AMD EPYC 9654");
        assert_eq!(f.vendor, "AuthenticAMD");
        assert_eq!(f.logical_cpus, 2);
    }

    #[test]
    fn arm64_and_empty() {
        let text = "processor\t: 0\nBogoMIPS\t: 2000.00\nCPU implementer\t: 0x41\nCPU part\t: 0xd4f\n\n\
                    processor\t: 1\nCPU implementer\t: 0x41\nCPU part\t: 0xd4f\n";
        let f = parse_cpuinfo(text);
        assert_eq!(f.model, "implementer 0x41 part 0xd4f");
        assert_eq!(f.logical_cpus, 2);
        assert_eq!(parse_cpuinfo(""), CpuFacts::default());
    }
}
