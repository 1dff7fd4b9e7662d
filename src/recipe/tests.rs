//! Composition rules and every error path, on small in-memory overlay trees.

use super::criteria::{Criteria, Dimension};
use super::error::RecipeError;
use super::source::RecipeFiles;
use super::{Catalog, compose};

const HEAD: &str = "apiVersion: aiconform.dev/v1alpha1\nkind: Overlay\n";

fn overlay(body: &str) -> String {
    format!("{HEAD}{body}")
}

fn catalog(files: &[(&str, String)]) -> Result<Catalog, RecipeError> {
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    let mut rf = RecipeFiles::default();
    rf.push_memory_layer("test", &refs);
    Catalog::load(rf)
}

fn query(pairs: &[(Dimension, &str)]) -> Criteria {
    let mut c = Criteria::new();
    for (d, v) in pairs {
        c.set(*d, v).unwrap();
    }
    c
}

fn base() -> (&'static str, String) {
    (
        "overlays/base.yaml",
        overlay(
            r#"name: base
constraints:
  - {name: K8s.server.version, value: ">= 1.30"}
componentRefs:
  - name: cert-manager
    type: Helm
    source: https://charts.jetstack.io
    version: v1.17.2
    valuesFile: components/cert-manager/base.yaml
  - name: gpu-operator
    type: Helm
    source: https://helm.ngc.nvidia.com/nvidia
    version: v25.10.1
    dependencyRefs: [cert-manager]
    values:
      driver: {version: "570.1", enabled: true}
      cdi: {enabled: false}
"#,
        ),
    )
}

fn cm_values() -> (&'static str, String) {
    (
        "components/cert-manager/base.yaml",
        "crds: {enabled: true}\n".into(),
    )
}

#[test]
fn more_specific_layers_win() {
    let c = catalog(&[
        base(),
        cm_values(),
        (
            "overlays/eks.yaml",
            overlay(
                r#"name: eks
criteria: {service: eks}
constraints:
  - {name: K8s.server.version, value: ">= 1.32.4"}
componentRefs:
  - name: gpu-operator
    values: {driver: {version: "575.2"}, cdi: {enabled: true}}
"#,
            ),
        ),
        (
            "overlays/h100.yaml",
            overlay(
                r#"name: h100
criteria: {accelerator: h100}
componentRefs:
  - name: gpu-operator
    values: {driver: {version: "580.3"}}
"#,
            ),
        ),
        (
            "overlays/eks-h100.yaml",
            overlay(
                r#"name: eks-h100
criteria: {service: eks, accelerator: h100}
componentRefs:
  - name: gpu-operator
    version: v25.10.2
"#,
            ),
        ),
    ])
    .unwrap();
    let r = compose(
        &c,
        &query(&[
            (Dimension::Service, "eks"),
            (Dimension::Accelerator, "h100"),
        ]),
    )
    .unwrap();
    assert_eq!(
        r.metadata.applied_overlays,
        ["base", "eks", "h100", "eks-h100"]
    );
    let gpu = r.component("gpu-operator").unwrap();
    assert_eq!(gpu.values["driver"]["version"], "580.3");
    assert_eq!(
        gpu.values["driver"]["enabled"], true,
        "deep merge keeps base keys"
    );
    assert_eq!(gpu.values["cdi"]["enabled"], true);
    assert_eq!(gpu.version, "v25.10.2");
    assert_eq!(gpu.overlays, ["base", "eks", "h100", "eks-h100"]);
    assert_eq!(r.constraints[0].value, ">= 1.32.4");
    assert_eq!(r.constraints[0].source, "eks");
    assert_eq!(r.deployment_order, ["cert-manager", "gpu-operator"]);
    assert_eq!(r.metadata.value_count, 4);

    // A query that leaves the accelerator open gets no accelerator layers.
    let generic = compose(&c, &query(&[(Dimension::Service, "eks")])).unwrap();
    assert_eq!(generic.metadata.applied_overlays, ["base", "eks"]);
    assert_eq!(
        generic.component("gpu-operator").unwrap().values["driver"]["version"],
        "575.2"
    );
}

#[test]
fn parent_chain_applies_before_child() {
    let c = catalog(&[
        base(),
        cm_values(),
        (
            "overlays/tuning.yaml",
            overlay("name: tuning\ncriteria: {service: gke}\ncomponentRefs:\n  - name: gpu-operator\n    values: {driver: {version: \"1\"}}\n"),
        ),
        (
            "overlays/training.yaml",
            overlay("name: training\nbase: tuning\ncriteria: {intent: training}\ncomponentRefs:\n  - name: gpu-operator\n    values: {gdrcopy: {enabled: true}}\n"),
        ),
    ])
    .unwrap();
    let r = compose(&c, &query(&[(Dimension::Intent, "training")])).unwrap();
    // `tuning` does not match the query but is the parent of `training`.
    assert_eq!(r.metadata.applied_overlays, ["base", "tuning", "training"]);
    let gpu = r.component("gpu-operator").unwrap();
    assert_eq!(gpu.values["driver"]["version"], "1");
    assert_eq!(gpu.values["gdrcopy"]["enabled"], true);
}

#[test]
fn disabled_component_is_removed_and_dependents_fail_clearly() {
    let files = vec![
        base(),
        cm_values(),
        (
            "overlays/inference.yaml",
            overlay(
                "name: inference\ncriteria: {intent: inference}\ncomponentRefs:\n  - name: cert-manager\n    enabled: false\n",
            ),
        ),
    ];
    let c = catalog(&files).unwrap();
    let err = compose(&c, &query(&[(Dimension::Intent, "inference")])).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, RecipeError::UnknownDependency { .. }),
        "{msg}"
    );
    assert!(msg.contains("test:overlays/base.yaml"), "{msg}");
    assert!(
        msg.contains("`gpu-operator` depends on `cert-manager`"),
        "{msg}"
    );

    let ok = compose(&c, &Criteria::new()).unwrap();
    assert_eq!(ok.components.len(), 2);
}

#[test]
fn disabling_a_leaf_component_drops_it() {
    let files = vec![
        base(),
        cm_values(),
        (
            "overlays/lean.yaml",
            overlay(
                "name: lean\ncriteria: {service: kind}\ncomponentRefs:\n  - name: gpu-operator\n    enabled: false\n",
            ),
        ),
    ];
    let r = compose(
        &catalog(&files).unwrap(),
        &query(&[(Dimension::Service, "kind")]),
    )
    .unwrap();
    assert_eq!(r.deployment_order, ["cert-manager"]);
}

#[test]
fn dependency_cycle_is_rejected() {
    let files = vec![
        base(),
        cm_values(),
        (
            "overlays/loop.yaml",
            overlay(
                "name: loop\ncriteria: {service: eks}\ncomponentRefs:\n  - name: cert-manager\n    dependencyRefs: [gpu-operator]\n",
            ),
        ),
    ];
    let err = compose(
        &catalog(&files).unwrap(),
        &query(&[(Dimension::Service, "eks")]),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "component dependencies form a cycle among: cert-manager, gpu-operator"
    );
}

#[test]
fn unknown_dependency_anywhere_is_rejected_at_load() {
    let files = vec![
        base(),
        cm_values(),
        (
            "overlays/x.yaml",
            overlay(
                "name: x\ncomponentRefs:\n  - name: extra\n    type: Manifest\n    version: v1\n    dependencyRefs: [ghost]\n",
            ),
        ),
    ];
    let msg = catalog(&files).unwrap_err().to_string();
    assert_eq!(
        msg,
        "test:overlays/x.yaml: component `extra` depends on `ghost`, which is not a component of this recipe"
    );
}

#[test]
fn parent_cycle_and_unknown_parent() {
    let files = vec![
        base(),
        cm_values(),
        ("overlays/a.yaml", overlay("name: a\nbase: b\n")),
        ("overlays/b.yaml", overlay("name: b\nbase: a\n")),
    ];
    let err = catalog(&files).unwrap_err();
    assert!(matches!(err, RecipeError::ParentCycle { .. }), "{err}");
    assert!(err.to_string().contains("a -> b -> a"), "{err}");

    let files = vec![
        base(),
        cm_values(),
        ("overlays/a.yaml", overlay("name: a\nbase: nobody\n")),
    ];
    assert_eq!(
        catalog(&files).unwrap_err().to_string(),
        "test:overlays/a.yaml: overlay `a` has base `nobody`, which no overlay defines"
    );
}

#[test]
fn unknown_criteria_value_names_file() {
    let files = vec![
        base(),
        cm_values(),
        (
            "overlays/a.yaml",
            overlay("name: a\ncriteria: {accelerator: tpu}\n"),
        ),
    ];
    let msg = catalog(&files).unwrap_err().to_string();
    assert!(
        msg.starts_with("test:overlays/a.yaml: unknown accelerator `tpu`"),
        "{msg}"
    );
}

#[test]
fn unknown_field_names_file_and_line() {
    let files = vec![
        base(),
        cm_values(),
        (
            "overlays/a.yaml",
            overlay("name: a\ncomponentRefs:\n  - name: x\n    verison: v1\n"),
        ),
    ];
    let err = catalog(&files).unwrap_err();
    let RecipeError::Yaml(y) = &err else {
        panic!("{err}")
    };
    assert_eq!(y.origin, "test:overlays/a.yaml");
    assert_eq!(y.line, Some(6), "{err}");
    assert!(y.message.contains("verison"), "{err}");
}

#[test]
fn missing_values_file_is_named() {
    let files = vec![base()];
    assert_eq!(
        catalog(&files).unwrap_err().to_string(),
        "test:overlays/base.yaml: component `cert-manager` refers to values file `components/cert-manager/base.yaml`, which does not exist under the recipes root"
    );
}

#[test]
fn values_file_must_be_a_mapping() {
    let files = vec![
        base(),
        ("components/cert-manager/base.yaml", "- a\n- b\n".into()),
    ];
    let msg = catalog(&files).unwrap_err().to_string();
    assert!(msg.contains("values file must be a YAML mapping"), "{msg}");
}

#[test]
fn duplicate_overlay_names_in_one_layer() {
    let files = vec![base(), cm_values(), ("overlays/copy.yaml", base().1)];
    let err = catalog(&files).unwrap_err();
    assert!(matches!(err, RecipeError::DuplicateOverlay { .. }), "{err}");
    assert!(err.to_string().contains("overlay `base` is defined twice"));
}

#[test]
fn duplicate_component_and_constraint_entries() {
    let dup_component = overlay("name: a\ncomponentRefs:\n  - {name: x}\n  - {name: x}\n");
    let files = vec![base(), cm_values(), ("overlays/a.yaml", dup_component)];
    assert!(
        catalog(&files)
            .unwrap_err()
            .to_string()
            .contains("component `x` is listed twice")
    );

    let dup_constraint = overlay(
        "name: a\nconstraints:\n  - {name: OS.release.ID, value: ubuntu}\n  - {name: OS.release.ID, value: rhel}\n",
    );
    let files = vec![base(), cm_values(), ("overlays/a.yaml", dup_constraint)];
    assert!(
        catalog(&files)
            .unwrap_err()
            .to_string()
            .contains("constraint `OS.release.ID` is listed twice")
    );

    let bad_path = overlay("name: a\nconstraints:\n  - {name: version, value: \"1\"}\n");
    let files = vec![base(), cm_values(), ("overlays/a.yaml", bad_path)];
    assert!(
        catalog(&files)
            .unwrap_err()
            .to_string()
            .contains("not a measurement path")
    );
}

#[test]
fn names_that_could_escape_a_directory_are_rejected() {
    for name in ["../etc", "a/b", "UPPER", "x.y"] {
        let files = vec![
            base(),
            cm_values(),
            (
                "overlays/a.yaml",
                overlay(&format!("name: a\ncomponentRefs:\n  - name: \"{name}\"\n")),
            ),
        ];
        let msg = catalog(&files).unwrap_err().to_string();
        assert!(msg.contains("must be lowercase letters"), "{name}: {msg}");
    }
}

#[test]
fn wrong_api_version_or_kind() {
    let files = vec![
        base(),
        cm_values(),
        (
            "overlays/a.yaml",
            "apiVersion: v9\nkind: Overlay\nname: a\n".into(),
        ),
    ];
    assert!(
        catalog(&files)
            .unwrap_err()
            .to_string()
            .contains("apiVersion `v9` is not supported")
    );
    let files = vec![
        base(),
        cm_values(),
        (
            "overlays/a.yaml",
            "apiVersion: aiconform.dev/v1alpha1\nkind: Recipe\nname: a\n".into(),
        ),
    ];
    assert!(
        catalog(&files)
            .unwrap_err()
            .to_string()
            .contains("kind `Recipe` is not `Overlay`")
    );
}

#[test]
fn incomplete_component_lists_overlays() {
    let files = vec![
        base(),
        cm_values(),
        (
            "overlays/a.yaml",
            overlay("name: a\ncomponentRefs:\n  - name: extra\n    type: Manifest\n"),
        ),
    ];
    let err = compose(&catalog(&files).unwrap(), &Criteria::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "component `extra` has no version after applying overlays a; set it in one of them"
    );
}

#[test]
fn no_overlays_is_an_error() {
    let err = catalog(&[("components/x.yaml", "a: 1\n".into())]).unwrap_err();
    assert!(matches!(err, RecipeError::NoOverlays { .. }), "{err}");
}

#[test]
fn later_layer_replaces_overlay_by_name_and_files_by_path() {
    let mut rf = RecipeFiles::default();
    let b = base();
    let v = cm_values();
    rf.push_memory_layer("builtin", &[(b.0, b.1.as_str()), (v.0, v.1.as_str())]);
    rf.push_memory_layer(
        "site",
        &[
            ("components/cert-manager/base.yaml", "crds: {enabled: false}\nreplicaCount: 3\n"),
            (
                "overlays/my-base.yaml",
                &overlay("name: base\ncomponentRefs:\n  - name: cert-manager\n    type: Helm\n    source: https://example.invalid\n    version: v9\n    valuesFile: components/cert-manager/base.yaml\n"),
            ),
        ],
    );
    let r = compose(&Catalog::load(rf).unwrap(), &Criteria::new()).unwrap();
    assert_eq!(
        r.deployment_order,
        ["cert-manager"],
        "site base replaced builtin base"
    );
    let cm = r.component("cert-manager").unwrap();
    assert_eq!(cm.version, "v9");
    assert_eq!(cm.values["replicaCount"], 3);
    assert_eq!(cm.values["crds"]["enabled"], false);
}

#[test]
fn manifests_are_embedded_and_replaced_by_file_name() {
    let files = vec![
        base(),
        cm_values(),
        ("components/x/manifests/cm.yaml", "kind: ConfigMap\n".into()),
        ("site/cm.yaml", "kind: ConfigMap # site\n".into()),
        (
            "overlays/a.yaml",
            overlay(
                "name: a\ncomponentRefs:\n  - name: x\n    type: Manifest\n    version: v1\n    manifestFiles: [components/x/manifests/cm.yaml]\n",
            ),
        ),
        (
            "overlays/b.yaml",
            overlay(
                "name: b\ncriteria: {service: eks}\ncomponentRefs:\n  - name: x\n    manifestFiles: [site/cm.yaml]\n",
            ),
        ),
    ];
    let c = catalog(&files).unwrap();
    let r = compose(&c, &query(&[(Dimension::Service, "eks")])).unwrap();
    let x = r.component("x").unwrap();
    assert_eq!(x.manifests.len(), 1);
    assert_eq!(x.manifests[0].name, "cm.yaml");
    assert_eq!(x.manifests[0].content, "kind: ConfigMap # site\n");
    assert_eq!(x.namespace, "x", "namespace defaults to the component name");
    assert_eq!(x.chart, None, "manifest components have no chart");
}

#[test]
fn selector_reads_hydrated_values() {
    let c = catalog(&[base(), cm_values()]).unwrap();
    let r = compose(&c, &Criteria::new()).unwrap();
    let v = super::query::select(&r, "components.gpu-operator.values.driver.version").unwrap();
    assert_eq!(v, "570.1");
    let err = super::query::select(&r, "components.gpu-operator.values.nope").unwrap_err();
    assert!(err.to_string().contains("available: cdi, driver"), "{err}");
    assert_eq!(
        super::query::select(&r, "deploymentOrder.1").unwrap(),
        "gpu-operator"
    );
}

#[test]
fn components_carry_conformance_parameters_and_later_layers_reassign_them() {
    let kai = |extra: &str| {
        format!(
            "  - name: kai\n    type: Manifest\n    version: v1\n{extra}    conformance:\n      gangScheduling:\n        source: kai chart\n        params: {{gangScheduler: kai, queue: q}}\n"
        )
    };
    let files = [
        (
            "overlays/base.yaml",
            overlay(&format!("name: base\ncomponentRefs:\n{}", kai(""))),
        ),
        (
            "overlays/training.yaml",
            overlay(
                "name: training\ncriteria: {intent: training}\nvalidation:\n  gangScheduling: {members: 3}\ncomponentRefs:\n  - name: kueue\n    type: Manifest\n    version: v1\n    conformance:\n      gangScheduling:\n        source: kueue manifests\n        params: {gangScheduler: kueue, clusterQueue: cq}\n",
            ),
        ),
    ];
    let cat = catalog(&files).unwrap();
    let r = compose(&cat, &query(&[])).unwrap();
    assert_eq!(
        r.validation["gangScheduling"],
        serde_json::json!({"component": "kai", "gangScheduler": "kai", "queue": "q", "source": "kai chart"})
    );
    let r = compose(&cat, &query(&[(Dimension::Intent, "training")])).unwrap();
    let g = &r.validation["gangScheduling"];
    assert_eq!(g["component"], "kueue", "{g}");
    assert_eq!(g["clusterQueue"], "cq");
    assert!(
        g.get("queue").is_none(),
        "a claim replaces the earlier one whole: {g}"
    );
    assert_eq!(g["members"], 3, "overlay validation adjusts it: {g}");

    let bad = [(
        "overlays/base.yaml",
        overlay(&format!(
            "name: base\ncomponentRefs:\n{}{}",
            kai(""),
            kai("").replace("name: kai", "name: kai2")
        )),
    )];
    let e = catalog(&bad).unwrap_err().to_string();
    assert!(e.contains("both claim conformance.gangScheduling"), "{e}");
    let bad = [(
        "overlays/base.yaml",
        overlay(
            &format!("name: base\ncomponentRefs:\n{}", kai("")).replace("queue: q", "component: x"),
        ),
    )];
    let e = catalog(&bad).unwrap_err().to_string();
    assert!(
        e.contains("overlays/base.yaml") && e.contains("params.component"),
        "{e}"
    );
}

fn pinned(name: &str, criteria: &str) -> (String, String) {
    (
        format!("overlays/{name}.yaml"),
        overlay(&format!("name: {name}\ncriteria: {criteria}\n")),
    )
}

fn with(extra: &[(String, String)]) -> Result<Catalog, RecipeError> {
    let mut files: Vec<(&str, String)> = vec![base(), cm_values()];
    files.extend(extra.iter().map(|(p, c)| (p.as_str(), c.clone())));
    catalog(&files)
}

#[test]
fn a_stated_criterion_without_an_overlay_is_named() {
    let c = with(&[pinned("eks", "{service: eks}")]).unwrap();
    let q = query(&[
        (Dimension::Service, "eks"),
        (Dimension::Accelerator, "h100"),
    ]);
    let e = compose(&c, &q).unwrap_err();
    assert!(
        matches!(&e, RecipeError::UncoveredCriterion { dimension: Dimension::Accelerator, value, .. } if value == "h100"),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("no overlay carries accelerator `h100`"),
        "{msg}"
    );
    assert!(msg.contains("overlays that apply: base, eks"), "{msg}");
    assert!(compose(&c, &query(&[(Dimension::Service, "eks")])).is_ok());
    assert!(compose(&c, &Criteria::new()).is_ok(), "nothing stated");
}

#[test]
fn leaves_are_the_overlays_nothing_refines() {
    let c = with(&[
        pinned("eks", "{service: eks}"),
        pinned("eks-training", "{service: eks, intent: training}"),
        pinned("h100", "{accelerator: h100}"),
        pinned("also-h100", "{accelerator: h100}"),
    ])
    .unwrap();
    let leaves: Vec<Vec<String>> = super::matrix::leaf_criteria(&c).into_values().collect();
    assert_eq!(
        leaves,
        [
            vec!["eks-training".to_string()],
            vec!["also-h100".into(), "h100".into()]
        ]
    );
    let m = super::matrix::matrix(&c);
    assert_eq!(m.summary.leaves, 2);
    assert_eq!(m.summary.recipe, 2);
    assert_eq!(m.summary.deploy, 2);
    // No overlay here sets floors or proves conformance.
    assert_eq!((m.summary.performance, m.summary.conformance), (0, 0));
    let training = m.leaves.iter().find(|l| l.name == "eks-training").unwrap();
    assert_eq!(
        training.missing,
        [
            "nccl floors.singleNode",
            "nccl floors.multiNode",
            "conformance aiServiceMetrics",
            "conformance gangScheduling",
            "conformance robustController"
        ]
    );
}
