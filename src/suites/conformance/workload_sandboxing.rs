//! workload_sandboxing (KAR-0020, a SHOULD from 1.37): the platform runs a workload in a
//! sandbox isolated from the node's kernel, as the upstream `TestWorkloadSandboxing` checks it.
//!
//! The case finds a sandboxed RuntimeClass: the one `params.runtimeClass` names, else the first
//! whose name or handler contains gvisor, runsc, kata, sandboxed, quark or krun. None: the case
//! is skipped saying where it looked (declare the requirement not applicable; a cluster without
//! a sandbox never passes). It runs `aiconform probe sandbox` as root in a pod of that class,
//! then the same probe in an ordinary control pod pinned (`spec.nodeName`) to the node the
//! sandboxed pod ran on. It passes only when the sandboxed pod sees no node process (the
//! daemons kubelet, containerd, containerd-shim*, dockerd, crio, systemd-journal, nor any
//! process outside its PID namespace, as its `/proc` lists them), cannot read a byte of
//! `/dev/mem` or `/dev/kmem`, has none of `/var/lib/kubelet`, `/etc/kubernetes`,
//! `/var/log/pods`, sees no node interface (docker0, cbr0, flannel*, cni0, br-*, bond*,
//! dummy*), and shows a kernel identity (`uname -r`, `/proc/version`, boot id) that differs
//! from the control pod's in at least one field both can read: the mark of a kernel of its own
//! rather than a namespace of the node's. The verdict names every check for both pods.

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use k8s_openapi::api::node::v1::RuntimeClass;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use super::super::k8s::{case_namespace, create, pod_state};
use super::secure_accelerator_access::{container_report, wait_finished, wait_scheduled};
use super::*;
use crate::probe::sandbox::{SandboxView, isolation_checks, kernel_difference};
use crate::runner::{CaseContext, Outcome};

/// What in a RuntimeClass's name or handler marks a sandbox (the upstream test's list).
pub const SANDBOX_MARKERS: &[&str] = &["gvisor", "runsc", "kata", "sandboxed", "quark", "krun"];

const SANDBOXED: &str = "sandboxed";
const CONTROL: &str = "control";
const CONTAINER: &str = "probe";

/// The RuntimeClass the case uses, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick {
    /// Name and handler.
    Class(String, String),
    /// `params.runtimeClass` names a RuntimeClass that does not exist: a failure.
    Missing(String),
    /// No sandboxed RuntimeClass: not applicable, for this reason.
    NotApplicable(String),
}

fn is_sandbox(name: &str, handler: &str) -> bool {
    let (n, h) = (name.to_ascii_lowercase(), handler.to_ascii_lowercase());
    SANDBOX_MARKERS
        .iter()
        .any(|m| n.contains(m) || h.contains(m))
}

/// Choose among `(name, handler)` RuntimeClasses (in the API's order, by name).
pub fn pick_runtime_class(classes: &[(String, String)], named: Option<&str>) -> Pick {
    if let Some(want) = named {
        return match classes.iter().find(|(n, _)| n == want) {
            Some((n, h)) => Pick::Class(n.clone(), h.clone()),
            None => Pick::Missing(format!(
                "params.runtimeClass names RuntimeClass {want}, which does not exist ({})",
                describe_classes(classes)
            )),
        };
    }
    if let Some((n, h)) = classes.iter().find(|(n, h)| is_sandbox(n, h)) {
        return Pick::Class(n.clone(), h.clone());
    }
    Pick::NotApplicable(format!(
        "no sandboxed RuntimeClass: looked for a RuntimeClass whose name or handler contains {} among {}. Name one with params.runtimeClass, or declare workload_sandboxing not applicable with a reason (a cluster without a sandbox does not pass)",
        SANDBOX_MARKERS.join(", "),
        describe_classes(classes)
    ))
}

fn describe_classes(classes: &[(String, String)]) -> String {
    if classes.is_empty() {
        return "the cluster's RuntimeClasses (there are none)".to_string();
    }
    format!(
        "the cluster's {} RuntimeClass(es): {}",
        classes.len(),
        classes
            .iter()
            .map(|(n, h)| format!("{n} (handler {h})"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The probe's report from its container status, or why there is none.
pub fn sandbox_report(status: Option<&ContainerStatus>) -> Result<SandboxView, String> {
    container_report(status, "probe report").map(|(_, view)| view)
}

/// Shorten a kernel identity value for messages.
fn short(v: Option<&str>) -> String {
    match v {
        None => "-".to_string(),
        Some(s) if s.chars().count() > 48 => format!("{}…", s.chars().take(48).collect::<String>()),
        Some(s) => s.to_string(),
    }
}

/// The verdict from both pods' views: Ok(summary) when the sandboxed pod passes every check,
/// Err((failed checks, summary)) otherwise.
pub fn judge(
    sandbox: &SandboxView,
    control: &SandboxView,
) -> Result<String, (Vec<String>, String)> {
    let mut failed = Vec::new();
    let mut sandboxed_parts = Vec::new();
    for c in isolation_checks(sandbox) {
        let verdict = if c.ok { "PASS" } else { "FAIL" };
        sandboxed_parts.push(format!("{} {verdict} ({})", c.name, c.detail));
        if !c.ok {
            failed.push(format!("{} FAILED ({})", c.name, c.detail));
        }
    }
    let kernel = kernel_difference(&sandbox.kernel, &control.kernel);
    let values = sandbox
        .kernel
        .fields()
        .into_iter()
        .zip(control.kernel.fields())
        .filter(|((name, _), _)| kernel.differing.contains(name))
        .map(|((name, a), (_, b))| format!("{name} {} vs {}", short(a), short(b)))
        .collect::<Vec<_>>();
    let kernel_detail = if values.is_empty() {
        format!("{} as the control pod", kernel.describe())
    } else {
        format!("{}: {}", kernel.describe(), values.join(", "))
    };
    if kernel.distinct() {
        sandboxed_parts.push(format!("kernel identity PASS ({kernel_detail})"));
    } else {
        sandboxed_parts.push(format!("kernel identity FAIL ({kernel_detail})"));
        failed.push(format!("kernel identity FAILED ({kernel_detail})"));
    }
    let control_parts: Vec<String> = isolation_checks(control)
        .into_iter()
        .map(|c| {
            format!(
                "{} {} ({})",
                c.name,
                if c.ok { "isolated" } else { "not isolated" },
                c.detail
            )
        })
        .chain(std::iter::once(format!(
            "kernel uname -r {}, /proc/version {}",
            short(control.kernel.uname_release.as_deref()),
            short(control.kernel.proc_version.as_deref())
        )))
        .collect();
    let summary = format!(
        "sandboxed pod: {}. Control pod (default runtime, same node; reference only): {}",
        sandboxed_parts.join("; "),
        control_parts.join("; ")
    );
    if failed.is_empty() {
        Ok(summary)
    } else {
        Err((failed, summary))
    }
}

fn probe_pod(
    image: &str,
    name: &str,
    runtime_class: Option<&str>,
    node: Option<&str>,
) -> serde_json::Value {
    let mut spec = json!({
        "restartPolicy": "Never",
        "automountServiceAccountToken": false,
        "containers": [{"name": CONTAINER, "image": image,
            "args": ["probe", "sandbox"],
            // Root inside the pod: the sandbox must hold even against its own root.
            "securityContext": {"runAsUser": 0, "runAsNonRoot": false}}]
    });
    if let Some(rc) = runtime_class {
        spec["runtimeClassName"] = json!(rc);
    }
    if let Some(n) = node {
        spec["nodeName"] = json!(n);
    }
    json!({"metadata": {"name": name, "labels": {"app.kubernetes.io/name": "aiconform-workload-sandboxing"}},
        "spec": spec})
}

fn node_of(pod: &Pod) -> String {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default()
}

fn report_of(pod: &Pod) -> Result<SandboxView, String> {
    let status = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == CONTAINER));
    sandbox_report(status).map_err(|e| {
        format!(
            "container {CONTAINER} of pod {} {e} ({})",
            pod.name_any(),
            pod_state(pod)
        )
    })
}

pub(super) async fn workload_sandboxing_impl(
    ctx: CaseContext,
    client: Client,
) -> anyhow::Result<Outcome> {
    let image = probe_image(&ctx)?;
    let classes: Vec<(String, String)> = Api::<RuntimeClass>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .map(|rc| (rc.name_any(), rc.handler))
        .collect();
    let named = ctx.param::<String>("runtimeClass")?;
    let (class, handler) = match pick_runtime_class(&classes, named.as_deref()) {
        Pick::Class(c, h) => (c, h),
        Pick::Missing(why) => return Ok(Outcome::failed(why)),
        Pick::NotApplicable(why) => return Ok(Outcome::skipped(why)),
    };
    let what = format!("RuntimeClass {class} (handler {handler})");
    let ns = case_namespace(&ctx)?;
    let deadline = deadline(&ctx);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);

    // Scheduling and execution: the sandboxed pod lands somewhere and runs the probe.
    create(&pods, probe_pod(&image, SANDBOXED, Some(&class), None)).await?;
    let scheduled = wait_scheduled(&pods, SANDBOXED, deadline).await?;
    let node = scheduled.as_ref().map(node_of).unwrap_or_default();
    if node.is_empty() {
        return Ok(Outcome::failed(format!(
            "scheduling and execution FAILED: pod {ns}/{SANDBOXED} of {what} was not scheduled within {}s: {}",
            secs(ctx.spec.timeout),
            scheduled
                .as_ref()
                .map(pod_state)
                .unwrap_or_else(|| "gone".to_string())
        )));
    }
    create(&pods, probe_pod(&image, CONTROL, None, Some(&node))).await?;
    let sandboxed = wait_finished(&pods, SANDBOXED, deadline).await?;
    let control = wait_finished(&pods, CONTROL, deadline).await?;
    let sandbox_view = match sandboxed.as_ref().map(report_of) {
        Some(Ok(v)) => v,
        Some(Err(e)) => {
            return Ok(Outcome::failed(format!(
                "scheduling and execution FAILED: the probe of {what} on node {node} did not report: {e}"
            )));
        }
        None => return Ok(Outcome::failed(format!("pod {ns}/{SANDBOXED} disappeared"))),
    };
    let control_view = match control.as_ref().map(report_of) {
        Some(Ok(v)) => v,
        Some(Err(e)) => {
            return Ok(Outcome::failed(format!(
                "the control pod on node {node} (default runtime) did not report, so the kernel identity cannot be compared: {e}"
            )));
        }
        None => return Ok(Outcome::failed(format!("pod {ns}/{CONTROL} disappeared"))),
    };
    Ok(match judge(&sandbox_view, &control_view) {
        Ok(summary) => Outcome::passed(format!(
            "{what}: the same probe ran in a sandboxed pod and in a control pod on node {node}; {summary}"
        )),
        Err((failed, summary)) => Outcome::failed(format!(
            "{what} does not isolate workloads from node {node}: {}. In full: {summary}",
            failed.join("; ")
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::sandbox::{DeviceAccess, KernelIdentity};

    fn classes(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, h)| (n.to_string(), h.to_string()))
            .collect()
    }

    #[test]
    fn runtime_class_by_name_or_marker() {
        let cs = classes(&[
            ("fast", "runc"),
            ("secure", "kata-qemu"),
            ("gvisor", "runsc"),
        ]);
        assert_eq!(
            pick_runtime_class(&cs, None),
            Pick::Class("secure".into(), "kata-qemu".into())
        );
        assert_eq!(
            pick_runtime_class(&cs, Some("gvisor")),
            Pick::Class("gvisor".into(), "runsc".into())
        );
        // A named class is used even without a marker (the operator knows it is a sandbox).
        assert_eq!(
            pick_runtime_class(&cs, Some("fast")),
            Pick::Class("fast".into(), "runc".into())
        );
        let Pick::Missing(why) = pick_runtime_class(&cs, Some("nope")) else {
            panic!("missing")
        };
        assert!(
            why.contains("names RuntimeClass nope, which does not exist"),
            "{why}"
        );
        assert_eq!(
            pick_runtime_class(&classes(&[("Sandboxed-X", "whatever")]), None),
            Pick::Class("Sandboxed-X".into(), "whatever".into())
        );
    }

    #[test]
    fn no_sandbox_is_not_applicable_saying_where_it_looked() {
        let Pick::NotApplicable(why) = pick_runtime_class(&classes(&[("fast", "runc")]), None)
        else {
            panic!("not applicable")
        };
        assert!(
            why.contains("gvisor, runsc, kata, sandboxed, quark, krun")
                && why.contains("the cluster's 1 RuntimeClass(es): fast (handler runc)")
                && why.contains("declare workload_sandboxing not applicable"),
            "{why}"
        );
        let Pick::NotApplicable(why) = pick_runtime_class(&[], None) else {
            panic!("not applicable")
        };
        assert!(why.contains("(there are none)"), "{why}");
    }

    fn status(state: serde_json::Value) -> ContainerStatus {
        serde_json::from_value(json!({"name": "probe", "image": "i", "imageID": "",
            "ready": false, "restartCount": 0, "state": state}))
        .expect("status")
    }

    #[test]
    fn reports_from_container_states() {
        let v = SandboxView {
            processes: 1,
            ..SandboxView::default()
        };
        let done = status(json!({"terminated": {"exitCode": 0,
            "message": serde_json::to_string(&v).unwrap()}}));
        assert_eq!(sandbox_report(Some(&done)).unwrap(), v);
        let crashed = status(
            json!({"terminated": {"exitCode": 128, "reason": "StartError",
            "message": "sandbox init: setuid: EPERM"}}),
        );
        assert_eq!(
            sandbox_report(Some(&crashed)).unwrap_err(),
            "exited 128 (StartError) without a probe report: sandbox init: setuid: EPERM"
        );
        let waiting = status(json!({"waiting": {"reason": "CreateContainerConfigError",
            "message": "no runtime handler \"kata\""}}));
        assert_eq!(
            sandbox_report(Some(&waiting)).unwrap_err(),
            "is waiting (CreateContainerConfigError: no runtime handler \"kata\")"
        );
        assert!(sandbox_report(None).is_err());
    }

    fn view(processes: usize, foreign: usize, version: &str, boot: &str) -> SandboxView {
        SandboxView {
            processes,
            foreign_processes: foreign,
            memory: vec![DeviceAccess {
                path: "/dev/mem".into(),
                access: "absent".into(),
            }],
            interfaces: vec!["lo".into()],
            kernel: KernelIdentity {
                uname_release: Some("6.18.44".into()),
                proc_version: Some(version.into()),
                boot_id: Some(boot.into()),
            },
            ..SandboxView::default()
        }
    }

    #[test]
    fn a_sandbox_passes_with_every_check_named_for_both_pods() {
        let sandbox = view(1, 0, "Linux version 4.19.0-gvisor", "aa");
        let control = view(103, 102, "Linux version 6.8.0-1015-aws", "bb");
        let summary = judge(&sandbox, &control).expect("pass");
        for check in [
            "process isolation PASS",
            "memory isolation PASS",
            "filesystem isolation PASS",
            "network isolation PASS",
            "kernel identity PASS (differs in /proc/version, boot id; same uname -r: /proc/version Linux version 4.19.0-gvisor vs Linux version 6.8.0-1015-aws, boot id aa vs bb)",
            "process isolation not isolated (its /proc lists 103 process(es), including 102 process(es) outside its PID namespace)",
            "memory isolation isolated",
            "kernel uname -r 6.18.44",
        ] {
            assert!(summary.contains(check), "{check}: {summary}");
        }
    }

    #[test]
    fn a_leaky_sandbox_fails_naming_each_failed_check() {
        // Shares the node's processes and kernel: what --sandbox-leaky does.
        let sandbox = view(103, 102, "Linux version 6.8.0-1015-aws", "bb");
        let control = view(104, 103, "Linux version 6.8.0-1015-aws", "bb");
        let (failed, summary) = judge(&sandbox, &control).unwrap_err();
        assert_eq!(
            failed,
            [
                "process isolation FAILED (its /proc lists 103 process(es), including 102 process(es) outside its PID namespace)",
                "kernel identity FAILED (same uname -r, /proc/version, boot id as the control pod)"
            ]
        );
        assert!(summary.contains("memory isolation PASS"), "{summary}");
        assert!(summary.contains("kernel identity FAIL"), "{summary}");
    }
}
