//! Every fixture in `fixtures/nccl/` yields the verdict its fabric deserves, quoting the
//! deciding line or figure.

use super::*;
use std::collections::BTreeMap;

fn text(name: &str) -> String {
    let path = format!("{}/fixtures/nccl/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn fixture(name: &str) -> NcclLog {
    parse(&text(name))
}

fn exp(service: &str, accelerator: &str, intent: &str) -> Expectation {
    let c: BTreeMap<String, String> = [
        ("service", service),
        ("accelerator", accelerator),
        ("intent", intent),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Expectation::for_recipe(&c, None).expect("expectation")
}

fn fig(v: f64) -> Option<Figure> {
    Some(Figure {
        busbw_gbps: v,
        source: format!("test {v}"),
        estimate: true,
    })
}

/// The same floor for every scope and algorithm.
fn flat(floor: f64, anchor: Option<f64>) -> Thresholds {
    let r = Reference {
        floor: fig(floor),
        anchor: anchor.and_then(fig),
    };
    let by = ByAlgo {
        default: Some(r.clone()),
        ring: Some(r),
    };
    Thresholds {
        large_message_bytes: Some(8_589_934_592),
        floors: Floors {
            single_node: Some(by.clone()),
            multi_node: Some(by),
        },
        ..Thresholds::default()
    }
}

use super::threshold::ByAlgo;

/// The report of a log whose topology the log itself shows.
fn judged(check: BandwidthCheck) -> BandwidthReport {
    match check {
        BandwidthCheck::Judged(r) => r,
        BandwidthCheck::Undetermined(why) => panic!("undetermined: {why}"),
    }
}

fn scope_algo(log: &NcclLog) -> (Scope, Algo) {
    let scope = log
        .topology(None)
        .scope()
        .expect("the log shows its topology");
    (scope, log.algo(scope))
}

fn pass(v: TransportVerdict) -> String {
    match v {
        TransportVerdict::Pass(m) => m,
        other => panic!("expected a pass: {other:?}"),
    }
}

fn fail(v: TransportVerdict) -> String {
    match v {
        TransportVerdict::Fail(m) => m,
        other => panic!("expected a failure: {other:?}"),
    }
}

#[test]
fn parses_rows_in_every_layout() {
    let r = parse_row(
        "  1048576  262144  float  sum  -1  30.91  33.92  59.37  N/A  31.00  33.82  59.18  N/A",
    )
    .expect("row");
    assert_eq!(r.size_bytes, 1_048_576);
    assert_eq!(r.out_of_place.wrong, None);
    assert_eq!(r.in_place.busbw_gbps, 59.18);
    assert!(parse_row("  1048576  262144  float  sum  -1  30.91").is_none());
    assert!(parse_row("a b c d e f g h i j k l m").is_none());
    assert!(parse_row("1 1 float sum -1 NaN 1 1 0 1 1 1 0").is_none());
    // Before 2.13 the check column is a max-error float.
    let old = table::parse_row_as(
        "  8589934592  2147483648  float  sum  -1  699506  12.28  21.49  2e-07  706409  12.16  21.28  0e+00",
        table::CheckColumn::Error,
    )
    .expect("pre-2.13 row");
    assert_eq!(old.out_of_place.max_error, Some(2e-07));
    assert_eq!(old.out_of_place.wrong, None);
    // 2019-2021 logs have no root column.
    let legacy = table::parse_row_as(
        "   33554432   8388608   float   sum   1220.4   27.49   48.11  1e-06   1219.7   27.51   48.14  1e-06",
        table::CheckColumn::Error,
    )
    .expect("legacy row");
    assert_eq!(legacy.root, None);
    assert_eq!(legacy.in_place.busbw_gbps, 48.14);
}

#[test]
fn aws_p5_two_nodes_over_efa_pass() {
    let log = fixture("aws-p5-2node-efa.txt");
    assert_eq!(log.runs.len(), 1);
    assert_eq!(log.hosts(), 2);
    assert_eq!(scope_algo(&log), (Scope::MultiNode, Algo::Default));
    let m = pass(log.judge_transport(&exp("eks", "h100", "training")));
    assert!(
        m.contains("`ip-10-1-23-4:301:301 [0] NCCL INFO Using network Libfabric`"),
        "{m}"
    );
    assert!(m.contains("Selected provider is efa"), "{m}");
    assert!(
        m.contains("all 48 network channels use GPUDirect RDMA"),
        "{m}"
    );
    assert!(m.contains("via P2P/CUMEM/read"), "{m}");
    // Tree on 2 nodes: 479.28 GB/s at 8 GiB, above the 400 GB/s line rate.
    let r = judged(log.check_bandwidth(&flat(300.0, Some(479.28)), None));
    let ok = r.verdict.expect("fast enough");
    assert!(ok.contains("busbw 479.28 GB/s at 8589934592 B"), "{ok}");
    assert!(ok.contains("100% of the anchor 479.28"), "{ok}");
    // Judged as an InfiniBand cluster it fails, naming the network NCCL used.
    let m = fail(log.judge_transport(&exp("aks", "h100", "training")));
    assert!(m.contains("Using network Libfabric"), "{m}");
}

#[test]
fn gke_a3_mega_tcpxo_passes_its_fabric_and_the_aicr_floor() {
    let log = fixture("gke-a3mega-2node-tcpxo.txt");
    assert_eq!(log.runs[0].tests_version.as_deref(), Some("2.17.6"));
    assert_eq!(log.hosts(), 2);
    // NCCL_ALGO=Ring,Tree is not Ring: NCCL's own choice.
    assert_eq!(scope_algo(&log).1, Algo::Default);
    let e = exp("gke", "h100", "training");
    assert_eq!(e.fabric, Fabric::Tcpxo);
    let m = pass(log.judge_transport(&e));
    assert!(m.contains("NCCL INFO Using network FasTrak`"), "{m}");
    assert!(!m.contains("GDRDMA"), "{m}");
    let r = judged(log.check_bandwidth(&flat(250.0, Some(340.0)), None));
    assert_eq!(
        r.figures
            .as_ref()
            .and_then(|f| f.large_message_bus_bandwidth),
        Some(333.51)
    );
    assert!(
        r.verdict
            .expect("passes")
            .contains("333.51 GB/s at 8589934592 B")
    );
    // The "gdr-enabled asks for GDRDMA lines": judged as IB it fails on the network name.
    let m = fail(log.judge_transport(&exp("aks", "h100", "training")));
    assert!(m.contains("Using network FasTrak"), "{m}");
}

#[test]
fn gke_without_tcpxo_falls_back_to_sockets() {
    let log = fixture("gke-a3mega-2node-socket.txt");
    let m = fail(log.judge_transport(&exp("gke", "h100", "training")));
    assert!(m.contains("fell back to TCP sockets"), "{m}");
    assert!(m.contains("NCCL INFO Using network Socket`"), "{m}");
    assert!(m.contains("NET/IB : No device found."), "{m}");
    let problems = judged(log.check_bandwidth(&flat(250.0, None), None))
        .verdict
        .expect_err("4 GB/s");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("busbw 4.10 GB/s") && p.contains("below the floor 250")),
        "{problems:?}"
    );
}

#[test]
fn azure_nd_h100_v5_single_node_nvls() {
    let log = fixture("azure-ndh100v5-1node-nvls.txt");
    assert_eq!(log.hosts(), 1);
    assert_eq!(scope_algo(&log), (Scope::SingleNode, Algo::Default));
    let m = pass(log.judge_transport(&exp("aks", "h100", "inference")));
    assert!(
        m.contains("NVLS in use: `ndh100v5-vm0:8812:8850 [0] NCCL INFO NVLS comm 0x55c3d0a0"),
        "{m}"
    );
    assert!(m.contains("type NVL/PIX"), "{m}");
    // The published figure is the in-place column; out-of-place is within 0.1%.
    let r = judged(log.check_bandwidth(&flat(460.0, Some(478.87)), None));
    assert!(
        r.verdict
            .expect("passes")
            .contains("busbw 478.46 GB/s at 8589934592 B")
    );
    // On a training recipe one node cannot show the IB network.
    match log.judge_transport(&exp("aks", "h100", "training")) {
        TransportVerdict::NotShown(m) => assert!(
            m.contains("not exercised on one node") && m.contains("NVLS in use"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn coreweave_gb200_nvl72_rack_over_mnnvl() {
    let log = fixture("coreweave-gb200-nvl72.txt");
    assert_eq!(log.runs[0].ranks, 72);
    assert_eq!(log.hosts(), 18);
    assert_eq!(log.runs[0].avg_bus_bandwidth, Some(745.53));
    let e = exp("eks", "gb200", "training");
    assert_eq!((e.fabric, e.nvls), (Fabric::Mnnvl, true));
    let m = pass(log.judge_transport(&e));
    assert!(
        m.contains("multi-node NVLink") && m.contains("via P2P/MNNVL`"),
        "{m}"
    );
    assert!(m.contains("NVLS comm 0x61a0c0"), "{m}");
    let r = judged(log.check_bandwidth(&flat(500.0, Some(834.57)), None));
    let ok = r.verdict.expect("passes");
    assert!(ok.contains("busbw 834.57 GB/s at 8589934592 B"), "{ok}");
}

#[test]
fn shm_fallback_in_a_pre_2_13_log_fails_with_the_lines() {
    let log = fixture("h100-8gpu-shm-fallback-2.11.txt");
    assert_eq!(log.runs[0].check_column, table::CheckColumn::Error);
    assert_eq!(log.runs[0].rows.len(), 31);
    assert!(
        log.runs[0].malformed.is_empty(),
        "{:?}",
        log.runs[0].malformed
    );
    let m = fail(log.judge_transport(&exp("aks", "h100", "inference")));
    assert!(
        m.contains("NCCL WARN P2P is disabled between NVLINK connected GPUs 0 and 1"),
        "{m}"
    );
    assert!(
        m.contains("16 channel(s)") && m.contains("via SHM/direct/direct`"),
        "{m}"
    );
    // No NVLS comm on one node: judged against the Ring floor.
    assert_eq!(scope_algo(&log).1, Algo::Ring);
    let problems = judged(log.check_bandwidth(&flat(333.0, None), None))
        .verdict
        .expect_err("21 GB/s");
    assert!(
        problems[0].contains("busbw 21.49 GB/s") && problems[0].contains("ring algorithm"),
        "{problems:?}"
    );
}

#[test]
fn nvls_unavailable_fails_transport_but_meets_the_ring_floor() {
    let log = fixture("h100-8gpu-no-nvls.txt");
    let m = fail(log.judge_transport(&exp("eks", "h100", "inference")));
    assert!(
        m.contains("NVLS multicast support is not available on dev 0"),
        "{m}"
    );
    assert_eq!(scope_algo(&log).1, Algo::Ring);
    let t = Thresholds {
        large_message_bytes: Some(8_589_934_592),
        floors: Floors {
            single_node: Some(ByAlgo {
                default: Some(Reference {
                    floor: fig(460.0),
                    anchor: None,
                }),
                ring: Some(Reference {
                    floor: fig(333.0),
                    anchor: fig(370.0),
                }),
            }),
            multi_node: None,
        },
        ..Thresholds::default()
    };
    let r = judged(log.check_bandwidth(&t, None));
    assert_eq!(r.reference.floor.map(|f| f.busbw_gbps), Some(333.0));
    assert!(
        r.verdict
            .expect("ring floor met")
            .contains("99% of the anchor 370")
    );
    // Without NVLS expected (NCCL_NVLS_ENABLE=0 in the recipe env) the transport passes.
    let c = BTreeMap::from([("accelerator".to_string(), "h100".to_string())]);
    let e = Expectation::for_recipe(
        &c,
        Some(&serde_json::json!({"env": {"NCCL_NVLS_ENABLE": "0"}})),
    )
    .expect("exp");
    assert!(!e.nvls);
    assert!(pass(log.judge_transport(&e)).contains("type NVL/PIX"));
}

#[test]
fn launcher_exit_fails_whatever_the_bandwidth() {
    let log = fixture("h100-2node-ib-exit7.txt");
    assert_eq!(log.runs[0].tests_version.as_deref(), Some("2.19.6"));
    assert_eq!(scope_algo(&log).1, Algo::Ring);
    // No channel lines (NCCL 2.27): `GDR 1` proves GPUDirect RDMA.
    let m = pass(log.judge_transport(&exp("aks", "h100", "training")));
    assert!(m.contains("use ring PXN 0 GDR 1`"), "{m}");
    let problems = judged(log.check_bandwidth(&flat(300.0, None), None))
        .verdict
        .expect_err("exit 7");
    assert!(
        problems.iter().any(|p| p.contains("exited with status 7")
            && p.contains("`# all_reduce_perf exit status 7`")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("Test failure common.cu:1106")),
        "{problems:?}"
    );
    // nccl-tests 2.16 exits 1; mpirun reports it.
    let text = text("h100-8gpu-nvlink.txt") + "Process name: [[41210,1],0]\n  Exit code:    1\n";
    let problems = judged(parse(&text).check_bandwidth(&flat(300.0, None), None))
        .verdict
        .expect_err("exit 1");
    assert!(
        problems[0].contains("exited with status 1") && problems[0].contains("`Exit code:    1`"),
        "{problems:?}"
    );
}

#[test]
fn gdr_off_is_quoted_from_channels_or_the_ring_flag() {
    let log = fixture("h100-2node-ib-no-gdr.txt");
    let m = fail(log.judge_transport(&exp("aks", "h100", "training")));
    assert!(m.contains("32 of 32 network channels lack GDRDMA"), "{m}");
    assert!(m.contains("via NET/IB/0`"), "{m}");
    assert!(m.contains("GPU Direct RDMA Disabled"), "{m}");
    let ok = fixture("h100-2node-ib-gdr.txt");
    assert!(
        pass(ok.judge_transport(&exp("aks", "h100", "training")))
            .contains("all 64 network channels use GPUDirect RDMA")
    );
    let two = "h:1:1 [0] NCCL INFO comm 0x1 rank 0 nRanks 16 nNodes 2 localRanks 8 localRank 0 MNNVL 0\n\
               h:1:1 [0] NCCL INFO Using network IB\n\
               h:1:1 [0] NCCL INFO Connected all rings, use ring PXN 0 GDR 0\n";
    let m = fail(parse(two).judge_transport(&exp("aks", "h100", "training")));
    assert!(
        m.contains("`h:1:1 [0] NCCL INFO Connected all rings, use ring PXN 0 GDR 0`"),
        "{m}"
    );
    // RoCE HCAs on an InfiniBand recipe.
    let roce = two.replace("GDR 0", "GDR 1")
        + "h:1:1 [0] NCCL INFO NET/IB : Using [0]mlx5_0:1/RoCE [RO]; OOB eth0:10.0.0.1<0>\n";
    assert!(fail(parse(&roce).judge_transport(&exp("aks", "h100", "training"))).contains("/RoCE"));
    assert!(pass(parse(&roce).judge_transport(&exp("gke", "b200", "training"))).contains("GDR 1"));
}

#[test]
fn efa_with_another_provider_fails() {
    let text = "h:1:1 [0] NCCL INFO comm 0x1 rank 0 nRanks 16 nNodes 2 localRanks 8 localRank 0 MNNVL 0\n\
                h:1:1 [0] NCCL INFO NET/OFI Selected provider is tcp, fabric is TCP-IP (found 4 nics)\n\
                h:1:1 [0] NCCL INFO Using network Libfabric\n\
                h:1:1 [0] NCCL INFO Channel 00/0 : 0[0] -> 8[0] [send] via NET/Libfabric/0\n";
    let m = fail(parse(text).judge_transport(&exp("eks", "h100", "training")));
    assert!(
        m.contains("provider other than efa") && m.contains("Selected provider is tcp"),
        "{m}"
    );
    assert!(m.contains("lack GDRDMA"), "{m}");
    // The older aws-ofi-nccl network name passes too.
    let old = fixture("h100-2node-efa.txt");
    assert!(pass(old.judge_transport(&exp("eks", "h100", "training"))).contains("AWS Libfabric"));
}

#[test]
fn mnnvl_traffic_over_the_nic_fails() {
    let text = "h:1:1 [0] NCCL INFO comm 0x1 rank 0 nRanks 8 nNodes 2 localRanks 4 localRank 0 MNNVL 0\n\
                h:1:1 [0] NCCL INFO Using network IB\n\
                h:1:1 [0] NCCL INFO Channel 00/0 : 0[0] -> 4[0] [send] via NET/IB/0/GDRDMA\n\
                h:1:1 [0] NCCL INFO NVLS comm 0x1 headRank 0 nHeads 4\n";
    let m = fail(parse(text).judge_transport(&exp("gke", "gb200", "training")));
    assert!(
        m.contains("not MNNVL") && m.contains("via NET/IB/0/GDRDMA`"),
        "{m}"
    );
}

#[test]
fn without_debug_lines_nothing_is_shown() {
    let log = fixture("h100-8gpu-nvlink.txt");
    match log.judge_transport(&exp("eks", "h100", "training")) {
        TransportVerdict::NotShown(m) => assert!(m.contains("NCCL_DEBUG=INFO"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn integrity_failures_win_over_bandwidth() {
    let log = fixture("h100-8gpu-wrong.txt");
    let t = Thresholds {
        large_message_bytes: Some(1_073_741_824),
        ..flat(1.0, None)
    };
    let problems = judged(log.check_bandwidth(&t, None))
        .verdict
        .expect_err("corrupt");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("#wrong > 0 at 4194304 B")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("out of bounds values: 1048578")),
        "{problems:?}"
    );

    let log = fixture("h100-8gpu-truncated.txt");
    assert!(!log.runs[0].complete());
    assert_eq!(log.runs[0].rows.len(), 22);
    let t = Thresholds {
        min_avg_bus_bandwidth_g_bps: Some(1.0),
        ..Thresholds::default()
    };
    let problems = judged(log.check_bandwidth(&t, None))
        .verdict
        .expect_err("truncated");
    assert!(
        problems[0].contains("truncated") && problems[0].contains("16777216"),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("malformed result line"))
    );

    let garbage = parse("Error: cannot find libnccl.so.2\nSegmentation fault\n");
    assert!(
        judged(garbage.check_bandwidth(&flat(1.0, None), None))
            .verdict
            .is_err()
    );
    let problems =
        judged(fixture("h100-8gpu-nvlink.txt").check_bandwidth(&Thresholds::default(), None))
            .verdict
            .expect_err("no floor");
    assert!(
        problems[0].contains("floors.singleNode.default.floor"),
        "{problems:?}"
    );
}

#[test]
fn large_message_floor_uses_the_last_run_that_reaches_the_size() {
    let sweep = text("h100-8gpu-nvlink.txt");
    let floor_run = "# nThread 1 nGpus 8 minBytes 8589934592 maxBytes 17179869184 step: 2(factor) warmup iters: 5 iters: 20 agg iters: 1 validation: 1 graph: 0\n\
#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong\n\
  8589934592    2147483648     float     sum      -1    31600  271.83  475.70       0    31580  272.00  476.00       0\n\
 17179869184    4294967296     float     sum      -1    63000  272.69  477.21       0    62990  272.74  477.29       0\n\
# Out of bounds values : 0 OK\n# Avg bus bandwidth    : 476.55\n";
    let log = parse(&format!("{sweep}{floor_run}"));
    assert_eq!(log.runs.len(), 2);
    let r = judged(log.check_bandwidth(&flat(470.0, None), None));
    let f = r.figures.expect("figures");
    assert_eq!(
        (f.large_message_size, f.large_message_bus_bandwidth),
        (Some(8_589_934_592), Some(475.70))
    );
    assert_eq!(f.avg_bus_bandwidth, 147.19, "the sweep's average");
    assert!(r.verdict.is_ok());
    // An explicit minLargeMessageBusBandwidthGBps overrides the recipe floors.
    let t = Thresholds::from_json(&serde_json::json!({
        "minLargeMessageBusBandwidthGBps": 476, "largeMessageBytes": 8589934592u64,
        "floors": {"singleNode": {"default": {"floor": {"busbwGBps": 1, "source": "s", "estimate": true}}}}
    }))
    .expect("thresholds");
    let problems = judged(log.check_bandwidth(&t, None))
        .verdict
        .expect_err("475.70 < 476");
    assert!(
        problems[0].contains("below the floor 476 GB/s (minLargeMessageBusBandwidthGBps)"),
        "{problems:?}"
    );
}

#[test]
fn malformed_floors_are_named() {
    let e = Thresholds::from_json(
        &serde_json::json!({"floors": {"singleNode": {"default": {"floor": {"busbwGBps": "x"}}}}}),
    )
    .expect_err("bad figure");
    assert!(e.contains("validation.nccl.allReduce.floors"), "{e}");
    let e = Thresholds::from_json(&serde_json::json!({"floors": {"oneNode": {}}}))
        .expect_err("unknown key");
    assert!(e.contains("oneNode"), "{e}");
    let c = BTreeMap::new();
    assert!(
        Expectation::for_recipe(&c, Some(&serde_json::json!({"fabric": "ethernet"})))
            .unwrap_err()
            .contains("infiniband-gdr")
    );
}

#[test]
fn fabric_from_criteria() {
    for (s, a, i, f) in [
        ("eks", "h100", "training", Fabric::Efa),
        ("eks", "b200", "training", Fabric::Efa),
        ("eks", "gb200", "training", Fabric::Mnnvl),
        ("gke", "h100", "training", Fabric::Tcpxo),
        ("gke", "b200", "training", Fabric::RoceGdr),
        ("aks", "h100", "training", Fabric::InfinibandGdr),
        ("aks", "b200", "inference", Fabric::NvlinkOnly),
        ("kind", "any", "training", Fabric::Socket),
    ] {
        assert_eq!(Fabric::for_criteria(s, a, i), f, "{s} {a} {i}");
        assert_eq!(Fabric::parse(f.as_str()), Ok(f));
    }
}

proptest::proptest! {
    #[test]
    fn parse_never_panics(s in "\\PC{0,400}") {
        let log = parse(&s);
        let _ = log.check_bandwidth(&flat(1.0, Some(2.0)), None);
        for f in Fabric::ALL {
            let _ = log.judge_transport(&Expectation { fabric: f, nvlink: true, nvls: true });
        }
    }
}

/// Without rank or comm lines a verdict stands only where both scopes' floors agree.
#[test]
fn unknown_topology_is_judged_where_both_floors_agree() {
    let table_only: String = text("h100-8gpu-nvlink.txt")
        .lines()
        .filter(|l| !l.starts_with("#  Rank"))
        .map(|l| format!("{l}\n"))
        .collect();
    let log = parse(&table_only);
    assert_eq!(log.topology(None), Topology::Unknown);
    assert_eq!(log.topology(Some(2)), Topology::Stated(2));
    let ok = judged(log.check_bandwidth(&flat(100.0, None), None))
        .verdict
        .expect("above both floors");
    assert!(ok.starts_with("topology unknown"), "{ok}");
    let problems = judged(log.check_bandwidth(&flat(10_000.0, None), None))
        .verdict
        .expect_err("below both floors");
    assert!(problems[0].starts_with("topology unknown"), "{problems:?}");
}
