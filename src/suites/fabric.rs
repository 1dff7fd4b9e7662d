//! Fabric suite: `nccl-all-reduce-bw` (integrity, launcher exit and large-message bus
//! bandwidth against the floor for the accelerator and fabric) and `gdr-enabled` (the
//! transports of the recipe's fabric proven from `NCCL_DEBUG=INFO`: GPUDirect RDMA over
//! IB/RoCE, EFA, TCPXO, MNNVL, NVLink/NVLS, no socket or SHM fallback).
//!
//! The nccl-tests output comes from, in order: `params.logFile`, the `AICONFORM_NCCL_LOG`
//! environment variable (an existing run, evaluated offline), or a run on the cluster: a
//! Kubeflow TrainJob across all GPU nodes when the Trainer and its MPI runtime are installed,
//! else a Job on one GPU node. Simulated GPU nodes cannot run it: the case skips.

use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, LogParams};
use kube::runtime::wait::await_condition;
use kube::{Client, ResourceExt};
use serde_json::json;

use super::k8s::{
    case_namespace, condition_true, crd_established, create, dynamic_api, gpu_allocatable,
    gpu_nodes, gpu_tolerations,
};
use super::nccl::{self, Expectation, Fabric, Floors, NcclLog, Thresholds, TransportVerdict};
use crate::runner::case::Series;
use crate::runner::{CaseContext, Outcome, ParamError};

/// Environment variable naming an existing nccl-tests output file to evaluate.
pub const LOG_ENV: &str = "AICONFORM_NCCL_LOG";
pub const TRAINJOB_CRD: &str = "trainjobs.trainer.kubeflow.org";

pub fn nccl_all_reduce_bw(ctx: CaseContext) -> BoxFuture<'static, anyhow::Result<Outcome>> {
    Box::pin(async move {
        let (log, source) = match obtain_run(&ctx).await? {
            Ok(r) => r,
            Err(outcome) => return Ok(outcome),
        };
        Ok(bandwidth_outcome(&ctx, &log, &source))
    })
}

/// The transports NCCL used are the recipe's fabric (GPUDirect RDMA over IB/RoCE, EFA,
/// TCPXO, MNNVL, NVLink/NVLS), with no socket or SHM fallback.
pub fn gdr_enabled(ctx: CaseContext) -> BoxFuture<'static, anyhow::Result<Outcome>> {
    Box::pin(async move {
        let exp = match expectation(&ctx) {
            Ok(e) => e,
            Err(e) => return Ok(Outcome::failed(e)),
        };
        let (log, source) = match obtain_run(&ctx).await? {
            Ok(r) => r,
            Err(outcome) => return Ok(outcome),
        };
        Ok(match log.judge_transport(&exp) {
            TransportVerdict::Pass(m) => Outcome::passed(format!("{source}: {m}")),
            TransportVerdict::Fail(m) => Outcome::failed(format!("{source}: {m}")),
            // Debug logging off: the run was set up so it cannot show the transports.
            TransportVerdict::NotShown(m) if log.transport.info_lines == 0 => {
                Outcome::failed(format!("{source}: transports not shown: {m}"))
            }
            // The network was not exercised (one node) or its lines were filtered out.
            TransportVerdict::NotShown(m) => Outcome::skipped(format!("{source}: {m}")),
        })
    })
}

/// What the recipe's fabric promises (`validation.nccl.fabric`, else its criteria).
pub fn expectation(ctx: &CaseContext) -> Result<Expectation, String> {
    Expectation::for_recipe(&ctx.recipe.criteria, ctx.recipe.validation.get("nccl"))
        .map_err(|e| format!("recipe {}: {e}", ctx.recipe.metadata.name))
}

/// Thresholds: flat keys in params win over `recipe.validation.nccl.allReduce`.
pub fn thresholds(ctx: &CaseContext) -> Result<Thresholds, String> {
    let recipe = ctx.recipe.validation.pointer("/nccl/allReduce");
    let params = Thresholds::from_json(&ctx.spec.params)?;
    let Some(recipe) = recipe else {
        return Ok(params);
    };
    let recipe = Thresholds::from_json(recipe)?;
    Ok(Thresholds {
        min_avg_bus_bandwidth_g_bps: params
            .min_avg_bus_bandwidth_g_bps
            .or(recipe.min_avg_bus_bandwidth_g_bps),
        min_large_message_bus_bandwidth_g_bps: params
            .min_large_message_bus_bandwidth_g_bps
            .or(recipe.min_large_message_bus_bandwidth_g_bps),
        large_message_bytes: params.large_message_bytes.or(recipe.large_message_bytes),
        floors: if params.floors == Floors::default() {
            recipe.floors
        } else {
            params.floors
        },
    })
}

/// The node count a log without rank lines spanned, when the case or the recipe states it:
/// `params.nodes`, else `validation.nccl.nodes`.
fn stated_nodes(ctx: &CaseContext) -> Result<Option<usize>, ParamError> {
    Ok(ctx.param::<usize>("nodes")?.or_else(|| {
        ctx.recipe
            .validation
            .pointer("/nccl/nodes")
            .and_then(serde_json::Value::as_u64)
            .map(|n| n as usize)
    }))
}

/// Evaluate a parsed log and record its bandwidth series, floor and anchor for the
/// performance report.
pub fn bandwidth_outcome(ctx: &CaseContext, log: &NcclLog, source: &str) -> Outcome {
    let t = match thresholds(ctx) {
        Ok(t) => t,
        Err(e) => return Outcome::failed(e),
    };
    let stated = match stated_nodes(ctx) {
        Ok(n) => n,
        Err(e) => return Outcome::failed(e.to_string()),
    };
    let report = match log.check_bandwidth(&t, stated) {
        nccl::BandwidthCheck::Judged(r) => r,
        nccl::BandwidthCheck::Undetermined(why) => {
            return Outcome::skipped(format!("{source}: {why}"));
        }
    };
    let id = &ctx.spec.id;
    let floor = report.reference.floor.as_ref().map(|f| f.busbw_gbps);
    for (i, run) in log
        .runs
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.rows.is_empty())
    {
        let label = if log.runs.len() > 1 {
            format!(
                " (run {}: {} .. {} B)",
                i + 1,
                run.min_bytes.unwrap_or(0),
                run.max_bytes.unwrap_or(0)
            )
        } else {
            String::new()
        };
        for (name, pick) in [("busbw out-of-place", true), ("busbw in-place", false)] {
            ctx.metrics.series(Series {
                case_id: id.clone(),
                name: format!("all_reduce_perf {name}{label}"),
                x_label: "message size (B)".to_string(),
                y_label: "bus bandwidth (GB/s)".to_string(),
                points: run
                    .rows
                    .iter()
                    .map(|r| {
                        let m = if pick { r.out_of_place } else { r.in_place };
                        (r.size_bytes as f64, m.busbw_gbps)
                    })
                    .collect(),
                threshold: floor,
            });
        }
    }
    if let Some(f) = &report.figures {
        ctx.metrics
            .record(id, "avgBusBandwidthGBps", f.avg_bus_bandwidth);
        ctx.metrics
            .record(id, "peakBusBandwidthGBps", f.peak_bus_bandwidth);
        if let Some(l) = f.large_message_bus_bandwidth {
            ctx.metrics.record(id, "largeMessageBusBandwidthGBps", l);
        }
        ctx.metrics.record(
            id,
            "ranks",
            log.runs.iter().map(|r| r.ranks).max().unwrap_or(0) as f64,
        );
        ctx.metrics.record(id, "nodes", log.hosts() as f64);
    }
    for (key, figure) in [
        ("floor", &report.reference.floor),
        ("anchor", &report.reference.anchor),
    ] {
        if let Some(f) = figure {
            ctx.metrics
                .record(id, &format!("{key}BusBandwidthGBps"), f.busbw_gbps);
            ctx.metrics.record(
                id,
                &format!("{key}IsEstimate"),
                f64::from(u8::from(f.estimate)),
            );
        }
    }
    match report.verdict {
        Ok(summary) => Outcome::passed(format!("{source}: {summary}")),
        Err(problems) => Outcome::failed(format!("{source}: {}", problems.join("; "))),
    }
}

/// The nccl-tests output to judge and where it came from, or the outcome that ends the case.
async fn obtain_run(ctx: &CaseContext) -> anyhow::Result<Result<(NcclLog, String), Outcome>> {
    let file = ctx
        .param::<String>("logFile")?
        .or_else(|| std::env::var(LOG_ENV).ok().filter(|v| !v.is_empty()));
    if let Some(path) = file {
        return Ok(match std::fs::read_to_string(&path) {
            Ok(text) => Ok((nccl::parse(&text), format!("log {path}"))),
            Err(e) => Err(Outcome::failed(format!(
                "cannot read nccl-tests output {path}: {e}"
            ))),
        });
    }
    let client = match ctx.require_client() {
        Ok(c) => c.clone(),
        Err(skip) => return Ok(Err(skip)),
    };
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let gpu = gpu_nodes(&nodes);
    if gpu.is_empty() {
        return Ok(Err(Outcome::failed(
            "no GPU nodes (no nvidia.com/gpu.present label or allocatable nvidia.com/gpu): nothing to run nccl-tests on",
        )));
    }
    // Both fabric cases judge the same run: run nccl-tests once per set of GPU nodes.
    let mut key: Vec<String> = gpu.iter().map(|n| n.name_any()).collect();
    key.sort();
    let key = key.join(",");
    if let Some((text, source)) = cached_run(&key) {
        return Ok(Ok((
            nccl::parse(&text),
            format!("{source}, run earlier in this process"),
        )));
    }
    let fresh = run_on_cluster(ctx, &client, &nodes).await?;
    if let Ok((text, source)) = &fresh {
        store_run(&key, text, source);
    }
    Ok(fresh.map(|(text, source)| (nccl::parse(&text), source)))
}

/// nccl-tests output of on-cluster runs, by GPU node set: (output, source description).
static RUNS: std::sync::Mutex<Vec<(String, String, String)>> = std::sync::Mutex::new(Vec::new());

fn cached_run(key: &str) -> Option<(String, String)> {
    RUNS.lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|(k, _, _)| k == key)
        .map(|(_, t, s)| (t.clone(), s.clone()))
}

fn store_run(key: &str, text: &str, source: &str) {
    let mut runs = RUNS.lock().unwrap_or_else(|e| e.into_inner());
    runs.retain(|(k, _, _)| k != key);
    runs.push((key.to_string(), text.to_string(), source.to_string()));
}

/// NCCL debug subsystems the transport check reads: INIT (network, channels, NVLS, comm),
/// ENV (`NCCL_ALGO set by environment`), NET (GDR, plugins) and GRAPH (NVLink type).
pub const DEBUG_SUBSYS: [&str; 4] = ["INIT", "ENV", "NET", "GRAPH"];

/// Environment of the nccl-tests ranks: the recipe's `validation.nccl.env` (fabric settings
/// such as `FI_PROVIDER`), then `NCCL_DEBUG=INFO` with at least [`DEBUG_SUBSYS`], and
/// `NCCL_ALGO=Ring` when the run checks a NIC fabric across nodes (on 2 nodes NCCL's Tree
/// exceeds the NIC line rate, so only Ring measures the network).
pub fn nccl_env(
    nccl_validation: Option<&serde_json::Value>,
    fabric: Fabric,
    nodes: u64,
) -> Vec<(String, String)> {
    let force_ring = nodes >= 2 && fabric.uses_nic();
    let mut env = vec![("NCCL_DEBUG".to_string(), "INFO".to_string())];
    let mut subsys: Vec<String> = DEBUG_SUBSYS.iter().map(|s| s.to_string()).collect();
    if let Some(map) = nccl_validation
        .and_then(|v| v.get("env"))
        .and_then(|v| v.as_object())
    {
        for (k, v) in map {
            let value = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            match k.as_str() {
                "NCCL_DEBUG" => continue,
                "NCCL_ALGO" if force_ring => continue,
                "NCCL_DEBUG_SUBSYS" => {
                    for s in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        if !subsys.iter().any(|have| have.eq_ignore_ascii_case(s)) {
                            subsys.push(s.to_string());
                        }
                    }
                    continue;
                }
                _ => env.push((k.clone(), value)),
            }
        }
    }
    env.insert(1, ("NCCL_DEBUG_SUBSYS".to_string(), subsys.join(",")));
    if force_ring {
        env.push(("NCCL_ALGO".to_string(), "Ring".to_string()));
    }
    env
}

fn env_json(env: &[(String, String)]) -> serde_json::Value {
    env.iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect()
}

/// The two all_reduce_perf runs: a sweep 8 B .. `large` for the plot, then `large` ..
/// 2×`large` (`-b 8G -e 16G`) for the floor. Each prints `# all_reduce_perf exit status N`;
/// the script exits with the first non-zero status.
pub fn launch_script(prefix: &str, gpus_per_process: u64, large: u64) -> String {
    let run = |b: u64, e: u64| {
        format!(
            "{prefix}all_reduce_perf -b {b} -e {e} -f 2 -g {gpus_per_process} -c 1 -n 20; rc=$?; echo \"# all_reduce_perf exit status $rc\"; [ \"$status\" -ne 0 ] || status=$rc"
        )
    };
    format!(
        "status=0\n{}\n{}\nexit $status\n",
        run(8, large),
        run(large, large.saturating_mul(2))
    )
}

/// A single-node Job: one pod with all `gpus` of a node, one process driving them (`-g`).
pub fn job_manifest(
    image: &str,
    env: &[(String, String)],
    gpus: u64,
    large: u64,
) -> serde_json::Value {
    json!({
        "metadata": {"name": "nccl-all-reduce"},
        "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "nccl", "image": image,
                "command": ["sh", "-c", launch_script("", gpus, large)],
                "env": env_json(env), "resources": {"limits": {"nvidia.com/gpu": gpus.to_string()}}}],
            "tolerations": gpu_tolerations()
        }}}
    })
}

/// A multi-node TrainJob on an MPI runtime: one rank per GPU (`-np nodes×gpus`, `-g 1`), the
/// environment exported to every rank with `-x`.
pub fn trainjob_manifest(
    image: &str,
    env: &[(String, String)],
    nodes: u64,
    gpus: u64,
    large: u64,
    runtime: &str,
) -> serde_json::Value {
    let mut mpirun = format!(
        "mpirun --allow-run-as-root -np {} -bind-to none",
        nodes * gpus
    );
    for (k, _) in env {
        mpirun.push_str(&format!(" -x {k}"));
    }
    mpirun.push(' ');
    json!({
        "apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob",
        "metadata": {"name": "nccl-all-reduce"},
        "spec": {
            "runtimeRef": {"name": runtime},
            "trainer": {
                "image": image, "numNodes": nodes,
                "command": ["sh", "-c", launch_script(&mpirun, 1, large)],
                "env": env_json(env),
                "resourcesPerNode": {"limits": {"nvidia.com/gpu": gpus.to_string()}}
            }
        }
    })
}

async fn run_on_cluster(
    ctx: &CaseContext,
    client: &Client,
    nodes: &[Node],
) -> anyhow::Result<Result<(String, String), Outcome>> {
    let validation = ctx.recipe.validation.get("nccl");
    let image = ctx.param::<String>("image")?.or_else(|| {
        validation
            .and_then(|v| v.get("image"))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    });
    let fabric = match expectation(ctx) {
        Ok(e) => e.fabric,
        Err(e) => return Ok(Err(Outcome::failed(e))),
    };
    let large = match thresholds(ctx) {
        Ok(t) => t.large_message_bytes.unwrap_or(8_589_934_592),
        Err(e) => return Ok(Err(Outcome::failed(e))),
    };
    let Some(image) = image else {
        return Ok(Err(Outcome::failed(
            "no nccl-tests image configured: set params.image or recipe validation.nccl.image",
        )));
    };
    let alloc = gpu_allocatable(nodes);
    let Some(gpus) = alloc.iter().map(|(_, n)| *n).max() else {
        return Ok(Err(Outcome::failed(
            "GPU nodes advertise no allocatable nvidia.com/gpu: nccl-tests pods cannot request GPUs",
        )));
    };
    let node_count = alloc.iter().filter(|(_, n)| *n == gpus).count() as u64;
    let ns = case_namespace(ctx)?;
    let deadline = super::k8s::case_deadline(ctx);
    let runtime = ctx
        .param::<String>("trainingRuntime")?
        .unwrap_or_else(|| "mpi-distributed".to_string());
    let trainer = node_count >= 2
        && crd_established(client, TRAINJOB_CRD).await?.is_ok()
        && dynamic_api(
            client,
            "trainer.kubeflow.org",
            "v1alpha1",
            "ClusterTrainingRuntime",
            "clustertrainingruntimes",
            None,
        )
        .get_opt(&runtime)
        .await
        .ok()
        .flatten()
        .is_some();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let env = nccl_env(validation, fabric, if trainer { node_count } else { 1 });
    let (selector, source) = if trainer {
        let tj: kube::core::DynamicObject = serde_json::from_value(trainjob_manifest(
            &image, &env, node_count, gpus, large, &runtime,
        ))?;
        let api = dynamic_api(
            client,
            "trainer.kubeflow.org",
            "v1alpha1",
            "TrainJob",
            "trainjobs",
            Some(&ns),
        );
        api.create(&kube::api::PostParams::default(), &tj).await?;
        let done = |o: Option<&kube::core::DynamicObject>| {
            o.is_some_and(|o| condition_true(o, "Complete") || condition_true(o, "Failed"))
        };
        let finished = tokio::time::timeout_at(
            deadline,
            await_condition(api.clone(), "nccl-all-reduce", done),
        )
        .await;
        match finished {
            Err(_) => {
                return Ok(Err(Outcome::failed(format!(
                    "TrainJob {ns}/nccl-all-reduce ({node_count} nodes × {gpus} GPUs) did not finish within {}s",
                    ctx.spec.timeout.as_secs()
                ))));
            }
            Ok(r) => {
                r?;
            }
        }
        (
            "jobset.sigs.k8s.io/jobset-name=nccl-all-reduce".to_string(),
            format!(
                "TrainJob {ns}/nccl-all-reduce ({node_count} nodes × {gpus} GPUs, runtime {runtime})"
            ),
        )
    } else {
        let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
        create(&jobs, job_manifest(&image, &env, gpus, large)).await?;
        let done = |j: Option<&Job>| {
            j.and_then(|j| j.status.as_ref())
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| {
                    cs.iter().any(|c| {
                        (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True"
                    })
                })
        };
        let finished = tokio::time::timeout_at(
            deadline,
            await_condition(jobs.clone(), "nccl-all-reduce", done),
        )
        .await;
        if finished.is_err() {
            return Ok(Err(Outcome::failed(format!(
                "Job {ns}/nccl-all-reduce (1 node × {gpus} GPUs) did not finish within {}s",
                ctx.spec.timeout.as_secs()
            ))));
        }
        finished.ok().transpose()?;
        (
            "batch.kubernetes.io/job-name=nccl-all-reduce".to_string(),
            format!(
                "Job {ns}/nccl-all-reduce (single node × {gpus} GPUs{})",
                if node_count >= 2 {
                    format!(
                        "; multi-node needs the Kubeflow Trainer with ClusterTrainingRuntime {runtime}"
                    )
                } else {
                    String::new()
                }
            ),
        )
    };
    let mut text = String::new();
    for p in pods
        .list(&ListParams::default().labels(&selector))
        .await?
        .items
    {
        let logs = tokio::time::timeout(
            Duration::from_secs(60),
            pods.logs(&p.name_any(), &LogParams::default()),
        )
        .await;
        if let Ok(Ok(l)) = logs {
            text.push_str(&l);
            text.push('\n');
        }
        for line in container_exits(&p) {
            text.push_str(&line);
            text.push('\n');
        }
    }
    if text.trim().is_empty() {
        return Ok(Err(Outcome::failed(format!(
            "{source}: no log output could be read from its pods"
        ))));
    }
    Ok(Ok((text, source)))
}

/// `# container exit status N (pod P, container C)` for every container that terminated
/// with a non-zero code: a launcher that died without printing is still a failure.
fn container_exits(pod: &Pod) -> Vec<String> {
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref());
    statuses
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let t = c.state.as_ref()?.terminated.as_ref()?;
            (t.exit_code != 0).then(|| {
                format!(
                    "# container exit status {} (pod {}, container {}{})",
                    t.exit_code,
                    pod.name_any(),
                    c.name,
                    t.reason
                        .as_ref()
                        .map(|r| format!(", {r}"))
                        .unwrap_or_default()
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_cluster_runs_are_shared_by_node_set() {
        assert_eq!(cached_run("test-a,test-b"), None);
        store_run("test-a,test-b", "out1", "Job x");
        store_run("test-a,test-b", "out2", "Job y");
        assert_eq!(
            cached_run("test-a,test-b"),
            Some(("out2".to_string(), "Job y".to_string()))
        );
        assert_eq!(cached_run("test-a"), None);
    }

    fn get<'a>(env: &'a [(String, String)], k: &str) -> Option<&'a str> {
        env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    #[test]
    fn env_keeps_debug_info_and_forces_ring_across_nodes_on_nic_fabrics() {
        let v = json!({"env": {"FI_PROVIDER": "efa", "NCCL_DEBUG": "WARN", "NCCL_BUFFSIZE": 8388608,
            "NCCL_DEBUG_SUBSYS": "TUNING,net", "NCCL_ALGO": "Ring,Tree"}});
        let env = nccl_env(Some(&v), Fabric::Efa, 2);
        assert_eq!(env[0], ("NCCL_DEBUG".to_string(), "INFO".to_string()));
        assert_eq!(
            get(&env, "NCCL_DEBUG_SUBSYS"),
            Some("INIT,ENV,NET,GRAPH,TUNING")
        );
        assert_eq!(get(&env, "FI_PROVIDER"), Some("efa"));
        assert_eq!(get(&env, "NCCL_BUFFSIZE"), Some("8388608"));
        assert_eq!(get(&env, "NCCL_ALGO"), Some("Ring"));
        for k in ["NCCL_DEBUG", "NCCL_ALGO", "NCCL_DEBUG_SUBSYS"] {
            assert_eq!(env.iter().filter(|(n, _)| n == k).count(), 1, "{k}");
        }
        // One node, or a fabric that is not a NIC (MNNVL): NCCL keeps its own algorithm.
        assert_eq!(
            get(&nccl_env(Some(&v), Fabric::Efa, 1), "NCCL_ALGO"),
            Some("Ring,Tree")
        );
        assert_eq!(get(&nccl_env(None, Fabric::Mnnvl, 18), "NCCL_ALGO"), None);
        assert_eq!(
            get(&nccl_env(None, Fabric::Tcpxo, 2), "NCCL_ALGO"),
            Some("Ring")
        );
        assert_eq!(nccl_env(None, Fabric::NvlinkOnly, 1).len(), 2);
    }

    #[test]
    fn launch_script_runs_the_sweep_then_the_large_message_run() {
        let script = launch_script("mpirun -np 16 ", 1, 8_589_934_592);
        let lines: Vec<&str> = script.lines().collect();
        assert_eq!(lines[0], "status=0");
        assert!(
            lines[1].starts_with("mpirun -np 16 all_reduce_perf -b 8 -e 8589934592 -f 2 -g 1"),
            "{script}"
        );
        assert!(
            lines[2].starts_with(
                "mpirun -np 16 all_reduce_perf -b 8589934592 -e 17179869184 -f 2 -g 1"
            ),
            "{script}"
        );
        assert!(lines[1].contains("echo \"# all_reduce_perf exit status $rc\""));
        assert_eq!(lines[3], "exit $status");
        // The status line is what the parser reads as a launcher failure.
        let f = nccl::table::launch_failure("# all_reduce_perf exit status 7").expect("failure");
        assert_eq!(f.exit_code, Some(7));
        assert!(nccl::table::launch_failure("# all_reduce_perf exit status 0").is_none());
        let f = nccl::table::launch_failure(
            "# container exit status 137 (pod l-0, container launcher, OOMKilled)",
        );
        assert_eq!(f.and_then(|f| f.exit_code), Some(137));
    }

    #[test]
    fn job_and_trainjob_request_whole_nodes() {
        let env = nccl_env(
            Some(&json!({"env": {"FI_PROVIDER": "efa"}})),
            Fabric::Efa,
            2,
        );
        let job: Job =
            serde_json::from_value(job_manifest("img:1", &env, 8, 1 << 33)).expect("a valid Job");
        let pod = job.spec.and_then(|s| s.template.spec).expect("pod spec");
        let c = &pod.containers[0];
        assert_eq!(
            c.resources
                .as_ref()
                .and_then(|r| r.limits.as_ref())
                .map(|l| l["nvidia.com/gpu"].0.clone()),
            Some("8".to_string())
        );
        let cmd = c.command.clone().unwrap_or_default();
        assert_eq!(&cmd[..2], ["sh", "-c"]);
        assert!(
            cmd[2].contains("all_reduce_perf -b 8 -e 8589934592 -f 2 -g 8"),
            "{cmd:?}"
        );
        assert!(
            cmd[2].contains("all_reduce_perf -b 8589934592 -e 17179869184 -f 2 -g 8"),
            "{cmd:?}"
        );
        assert_eq!(c.env.as_ref().map(Vec::len), Some(env.len()));

        let tj = trainjob_manifest("img:1", &env, 2, 8, 1 << 33, "mpi-distributed");
        assert_eq!(tj["spec"]["trainer"]["numNodes"], 2);
        assert_eq!(tj["spec"]["runtimeRef"]["name"], "mpi-distributed");
        let script = tj["spec"]["trainer"]["command"][2]
            .as_str()
            .expect("script");
        assert!(script.contains("mpirun --allow-run-as-root -np 16 -bind-to none -x NCCL_DEBUG -x NCCL_DEBUG_SUBSYS -x FI_PROVIDER -x NCCL_ALGO all_reduce_perf -b 8589934592 -e 17179869184 -f 2 -g 1"), "{script}");
        let names: Vec<&str> = tj["spec"]["trainer"]["env"]
            .as_array()
            .expect("env")
            .iter()
            .filter_map(|e| e["name"].as_str())
            .collect();
        assert_eq!(
            names,
            [
                "NCCL_DEBUG",
                "NCCL_DEBUG_SUBSYS",
                "FI_PROVIDER",
                "NCCL_ALGO"
            ]
        );
        assert_eq!(tj["spec"]["trainer"]["env"][3]["value"], "Ring");
    }

    #[test]
    fn non_zero_container_exits_become_failure_lines() {
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "launcher-0"},
            "status": {"containerStatuses": [
                {"name": "launcher", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                 "state": {"terminated": {"exitCode": 7, "reason": "Error"}}},
                {"name": "side", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                 "state": {"terminated": {"exitCode": 0}}}]}}))
        .expect("pod");
        let lines = container_exits(&pod);
        assert_eq!(
            lines,
            ["# container exit status 7 (pod launcher-0, container launcher, Error)"]
        );
        let log = nccl::parse(&lines.join("\n"));
        assert_eq!(log.failures[0].exit_code, Some(7));
    }
}
