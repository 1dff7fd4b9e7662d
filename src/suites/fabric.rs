//! Fabric suite: `nccl-all-reduce-bw` (bus bandwidth against recipe thresholds) and
//! `gdr-enabled` (GPUDirect RDMA proven from `NCCL_DEBUG=INFO`).
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
use super::nccl::{self, GdrVerdict, NcclRun, Thresholds};
use crate::runner::case::Series;
use crate::runner::{CaseContext, Outcome};
use crate::snapshot::cluster::is_simulated;

/// Environment variable naming an existing nccl-tests output file to evaluate.
pub const LOG_ENV: &str = "AICONFORM_NCCL_LOG";
pub const TRAINJOB_CRD: &str = "trainjobs.trainer.kubeflow.org";

pub fn nccl_all_reduce_bw(ctx: CaseContext) -> BoxFuture<'static, anyhow::Result<Outcome>> {
    Box::pin(async move {
        let (run, source) = match obtain_run(&ctx).await? {
            Ok(r) => r,
            Err(outcome) => return Ok(outcome),
        };
        Ok(bandwidth_outcome(&ctx, &run, &source))
    })
}

pub fn gdr_enabled(ctx: CaseContext) -> BoxFuture<'static, anyhow::Result<Outcome>> {
    Box::pin(async move {
        let (run, source) = match obtain_run(&ctx).await? {
            Ok(r) => r,
            Err(outcome) => return Ok(outcome),
        };
        Ok(match nccl::check_gdr(&run) {
            GdrVerdict::Enabled(m) => Outcome::passed(format!("{source}: {m}")),
            GdrVerdict::Disabled(m) => Outcome::failed(format!("{source}: {m}")),
            // Debug logging off: the run was set up so it cannot show GDR; that fails.
            GdrVerdict::NotShown(m) if run.transport.info_lines == 0 => {
                Outcome::failed(format!("{source}: GDR not shown: {m}"))
            }
            // No inter-node traffic (single node): GDR is not exercised at all.
            GdrVerdict::NotShown(m) => Outcome::skipped(format!("{source}: {m}")),
        })
    })
}

/// Thresholds: flat keys in params win over `recipe.validation.nccl.allReduce`.
pub fn thresholds(ctx: &CaseContext) -> Thresholds {
    let recipe = ctx
        .recipe
        .validation
        .pointer("/nccl/allReduce")
        .map(Thresholds::from_json);
    let params = Thresholds::from_json(&ctx.spec.params);
    match recipe {
        Some(r) => params.or(r),
        None => params,
    }
}

/// Evaluate a parsed run and record its bandwidth series for the performance report.
pub fn bandwidth_outcome(ctx: &CaseContext, run: &NcclRun, source: &str) -> Outcome {
    let t = thresholds(ctx);
    let (figures, verdict) = nccl::check_bandwidth(run, &t);
    let id = &ctx.spec.id;
    if !run.rows.is_empty() {
        for (name, pick) in [("busbw out-of-place", true), ("busbw in-place", false)] {
            ctx.metrics.series(Series {
                case_id: id.clone(),
                name: format!("all_reduce_perf {name}"),
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
                threshold: t.min_large_message_bus_bandwidth_g_bps,
            });
        }
    }
    if let Some(f) = &figures {
        ctx.metrics
            .record(id, "avgBusBandwidthGBps", f.avg_bus_bandwidth);
        ctx.metrics
            .record(id, "peakBusBandwidthGBps", f.peak_bus_bandwidth);
        if let Some(l) = f.large_message_bus_bandwidth {
            ctx.metrics.record(id, "largeMessageBusBandwidthGBps", l);
        }
        ctx.metrics.record(id, "ranks", run.ranks as f64);
    }
    match verdict {
        Ok(summary) => Outcome::passed(format!("{source}: {summary}")),
        Err(problems) => Outcome::failed(format!("{source}: {}", problems.join("; "))),
    }
}

/// The nccl-tests output to judge and where it came from, or the outcome that ends the case.
async fn obtain_run(ctx: &CaseContext) -> anyhow::Result<Result<(NcclRun, String), Outcome>> {
    let file = ctx
        .param::<String>("logFile")
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
    let simulated: Vec<String> = gpu
        .iter()
        .filter(|n| is_simulated(n))
        .map(|n| n.name_any())
        .collect();
    if !simulated.is_empty() {
        return Ok(Err(Outcome::skipped(format!(
            "simulated GPU nodes ({}): nccl-tests needs real GPUs and a real fabric; set params.logFile or {LOG_ENV} to evaluate an existing run",
            simulated.join(", ")
        ))));
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

/// Environment of the nccl-tests containers: `NCCL_DEBUG=INFO` (the GDR evidence) and the
/// recipe's `validation.nccl.env` (fabric settings such as `FI_PROVIDER`), which cannot turn
/// debug output off.
pub fn nccl_env(nccl_validation: Option<&serde_json::Value>) -> Vec<(String, String)> {
    let mut env = vec![("NCCL_DEBUG".to_string(), "INFO".to_string())];
    if let Some(map) = nccl_validation
        .and_then(|v| v.get("env"))
        .and_then(|v| v.as_object())
    {
        for (k, v) in map {
            if k == "NCCL_DEBUG" {
                continue;
            }
            let value = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            env.push((k.clone(), value));
        }
    }
    env
}

fn env_json(env: &[(String, String)]) -> serde_json::Value {
    env.iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect()
}

/// A single-node Job: one pod with all `gpus` of a node, one process driving them (`-g`).
pub fn job_manifest(
    image: &str,
    env: &[(String, String)],
    gpus: u64,
    max_bytes: u64,
) -> serde_json::Value {
    let cmd = format!("all_reduce_perf -b 8 -e {max_bytes} -f 2 -g {gpus} -c 1 -n 20");
    json!({
        "metadata": {"name": "nccl-all-reduce"},
        "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "nccl", "image": image, "command": ["sh", "-c", cmd],
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
    max_bytes: u64,
    runtime: &str,
) -> serde_json::Value {
    let mut command: Vec<String> = [
        "mpirun",
        "--allow-run-as-root",
        "-np",
        &(nodes * gpus).to_string(),
        "-bind-to",
        "none",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (k, _) in env {
        command.push("-x".to_string());
        command.push(k.clone());
    }
    command.extend(
        format!("all_reduce_perf -b 8 -e {max_bytes} -f 2 -g 1 -c 1 -n 20")
            .split(' ')
            .map(str::to_string),
    );
    json!({
        "apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob",
        "metadata": {"name": "nccl-all-reduce"},
        "spec": {
            "runtimeRef": {"name": runtime},
            "trainer": {
                "image": image, "numNodes": nodes, "command": command, "env": env_json(env),
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
    let image = ctx.param::<String>("image").or_else(|| {
        validation
            .and_then(|v| v.get("image"))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    });
    let env = nccl_env(validation);
    let max_bytes = thresholds(ctx).large_message_bytes.unwrap_or(8_589_934_592);
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
        .param::<String>("trainingRuntime")
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
    let (selector, source) = if trainer {
        let tj: kube::core::DynamicObject = serde_json::from_value(trainjob_manifest(
            &image, &env, node_count, gpus, max_bytes, &runtime,
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
        create(&jobs, job_manifest(&image, &env, gpus, max_bytes)).await?;
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
    }
    if text.trim().is_empty() {
        return Ok(Err(Outcome::failed(format!(
            "{source}: no log output could be read from its pods"
        ))));
    }
    Ok(Ok((text, source)))
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

    #[test]
    fn env_keeps_debug_info_and_adds_recipe_fabric_settings() {
        let v =
            json!({"env": {"FI_PROVIDER": "efa", "NCCL_DEBUG": "WARN", "NCCL_BUFFSIZE": 8388608}});
        let env = nccl_env(Some(&v));
        assert_eq!(env[0], ("NCCL_DEBUG".to_string(), "INFO".to_string()));
        assert!(env.contains(&("FI_PROVIDER".to_string(), "efa".to_string())));
        assert!(env.contains(&("NCCL_BUFFSIZE".to_string(), "8388608".to_string())));
        assert_eq!(env.iter().filter(|(k, _)| k == "NCCL_DEBUG").count(), 1);
        assert_eq!(nccl_env(None).len(), 1);
    }

    #[test]
    fn job_and_trainjob_request_whole_nodes() {
        let env = vec![
            ("NCCL_DEBUG".to_string(), "INFO".to_string()),
            ("FI_PROVIDER".to_string(), "efa".to_string()),
        ];
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
        assert!(
            c.command
                .as_ref()
                .is_some_and(|cmd| cmd[2].contains("-g 8") && cmd[2].contains("-e 8589934592"))
        );
        assert_eq!(c.env.as_ref().map(Vec::len), Some(2));

        let tj = trainjob_manifest("img:1", &env, 2, 8, 1 << 33, "mpi-distributed");
        assert_eq!(tj["spec"]["trainer"]["numNodes"], 2);
        assert_eq!(tj["spec"]["runtimeRef"]["name"], "mpi-distributed");
        let cmd: Vec<&str> = tj["spec"]["trainer"]["command"]
            .as_array()
            .expect("command")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        let np = cmd.iter().position(|a| *a == "-np").expect("-np");
        assert_eq!(cmd[np + 1], "16");
        assert!(cmd.windows(2).any(|w| w == ["-x", "FI_PROVIDER"]));
        assert!(cmd.windows(2).any(|w| w == ["-g", "1"]));
        assert_eq!(cmd.last(), Some(&"20"));
    }
}
