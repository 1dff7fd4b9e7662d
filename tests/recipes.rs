//! The built-in recipe data: every shipped combination composes, renders deterministically,
//! respects dependencies, and the rendered recipes are pinned by snapshots.

use std::collections::BTreeSet;

use aiconform::recipe::criteria::{Criteria, Dimension};
use aiconform::recipe::source::RecipeFiles;
use aiconform::recipe::{Catalog, Recipe, compose};
use proptest::prelude::*;

fn catalog() -> Catalog {
    Catalog::load(RecipeFiles::builtin()).expect("built-in recipes load")
}

fn criteria(service: &str, accelerator: &str, os: &str, intent: &str, platform: &str) -> Criteria {
    Criteria::new()
        .with(Dimension::Service, service)
        .and_then(|c| c.with(Dimension::Accelerator, accelerator))
        .and_then(|c| c.with(Dimension::Os, os))
        .and_then(|c| c.with(Dimension::Intent, intent))
        .and_then(|c| c.with(Dimension::Platform, platform))
        .expect("valid criteria")
}

/// The combinations the README promises.
const SHIPPED: &[[&str; 5]] = &[
    ["eks", "h100", "ubuntu", "training", "kubeflow"],
    ["eks", "gb200", "ubuntu", "training", "kubeflow"],
    ["eks", "h100", "ubuntu", "inference", "dynamo"],
    ["eks", "b200", "ubuntu", "inference", "dynamo"],
    ["gke", "h100", "cos", "training", "kubeflow"],
    ["gke", "b200", "cos", "inference", "dynamo"],
    ["gke", "gb200", "cos", "training", "kubeflow"],
    ["aks", "h100", "ubuntu", "training", "kubeflow"],
    ["aks", "b200", "ubuntu", "inference", "dynamo"],
    ["kind", "any", "any", "any", "any"],
    ["kind", "h100", "ubuntu", "training", "kubeflow"],
    ["eks", "any", "any", "any", "any"],
    ["any", "any", "any", "any", "any"],
];

fn render(c: &Criteria) -> String {
    let recipe = compose(&catalog(), c).unwrap_or_else(|e| panic!("{c}: {e}"));
    aiconform::yaml::to_string(&recipe).expect("serializes")
}

fn assert_dependencies_first(recipe: &Recipe) {
    let position = |name: &str| recipe.deployment_order.iter().position(|n| n == name);
    for c in &recipe.components {
        let at = position(&c.name).expect("component is ordered");
        for dep in &c.dependency_refs {
            let dep_at =
                position(dep).unwrap_or_else(|| panic!("{} depends on missing {dep}", c.name));
            assert!(
                dep_at < at,
                "{} deploys before its dependency {dep}",
                c.name
            );
        }
    }
    let order: Vec<&str> = recipe.components.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        order, recipe.deployment_order,
        "components are listed in deployment order"
    );
}

#[test]
fn every_shipped_combination_composes() {
    let catalog = catalog();
    for [s, a, o, i, p] in SHIPPED {
        let c = criteria(s, a, o, i, p);
        let recipe = compose(&catalog, &c).unwrap_or_else(|e| panic!("{c}: {e}"));
        assert!(!recipe.components.is_empty(), "{c}");
        assert_eq!(recipe.metadata.applied_overlays[0], "base", "{c}");
        assert_dependencies_first(&recipe);
    }
}

#[test]
fn fully_specialized_recipe_is_rich() {
    let recipe = compose(
        &catalog(),
        &criteria("eks", "h100", "ubuntu", "training", "kubeflow"),
    )
    .unwrap();
    assert!(
        recipe.components.len() >= 12,
        "{} components",
        recipe.components.len()
    );
    assert!(
        recipe.metadata.value_count >= 200,
        "{} values",
        recipe.metadata.value_count
    );
    for name in [
        "cert-manager",
        "gpu-operator",
        "nvidia-dra-driver-gpu",
        "kubeflow-trainer",
    ] {
        assert!(recipe.component(name).is_some(), "missing {name}");
    }
    // Every component is version-locked.
    for c in &recipe.components {
        assert!(
            !c.version.is_empty() && c.version != "latest",
            "{} is not pinned",
            c.name
        );
    }
}

#[test]
fn training_and_inference_differ_in_components_and_values() {
    let catalog = catalog();
    let train = compose(
        &catalog,
        &criteria("eks", "h100", "ubuntu", "training", "kubeflow"),
    )
    .unwrap();
    let infer = compose(
        &catalog,
        &criteria("eks", "h100", "ubuntu", "inference", "dynamo"),
    )
    .unwrap();
    let names = |r: &Recipe| {
        r.components
            .iter()
            .map(|c| c.name.clone())
            .collect::<BTreeSet<_>>()
    };
    let (t, i) = (names(&train), names(&infer));
    let swapped = t.symmetric_difference(&i).count();
    assert!(
        swapped >= 4,
        "only {swapped} components differ: {t:?} vs {i:?}"
    );
    let gpu_t = &train.component("gpu-operator").unwrap().values;
    let gpu_i = &infer.component("gpu-operator").unwrap().values;
    assert_ne!(gpu_t, gpu_i, "gpu-operator values differ between intents");
}

#[test]
fn query_reads_the_driver_version() {
    let recipe = compose(
        &catalog(),
        &criteria("eks", "h100", "ubuntu", "training", "kubeflow"),
    )
    .unwrap();
    let v =
        aiconform::recipe::query::select(&recipe, "components.gpu-operator.values.driver.version")
            .unwrap();
    assert!(v.as_str().is_some_and(|s| s.starts_with("5")), "{v}");
}

#[test]
fn snapshot_eks_h100_ubuntu_training_kubeflow() {
    insta::assert_snapshot!(render(&criteria(
        "eks", "h100", "ubuntu", "training", "kubeflow"
    )));
}

#[test]
fn snapshot_eks_h100_ubuntu_inference_dynamo() {
    insta::assert_snapshot!(render(&criteria(
        "eks",
        "h100",
        "ubuntu",
        "inference",
        "dynamo"
    )));
}

#[test]
fn snapshot_gke_gb200_cos_training_kubeflow() {
    insta::assert_snapshot!(render(&criteria(
        "gke", "gb200", "cos", "training", "kubeflow"
    )));
}

#[test]
fn snapshot_aks_b200_ubuntu_inference_dynamo() {
    insta::assert_snapshot!(render(&criteria(
        "aks",
        "b200",
        "ubuntu",
        "inference",
        "dynamo"
    )));
}

#[test]
fn snapshot_kind_generic() {
    insta::assert_snapshot!(render(&criteria("kind", "any", "any", "any", "any")));
}

fn dimension_value(d: Dimension) -> impl Strategy<Value = String> {
    let mut values: Vec<String> = d.allowed().iter().map(|s| s.to_string()).collect();
    values.push("any".into());
    proptest::sample::select(values)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any valid query renders byte-identically twice (from freshly loaded catalogs) and
    /// orders every component after its dependencies.
    #[test]
    fn rendering_is_deterministic_and_ordered(
        s in dimension_value(Dimension::Service),
        a in dimension_value(Dimension::Accelerator),
        o in dimension_value(Dimension::Os),
        i in dimension_value(Dimension::Intent),
        p in dimension_value(Dimension::Platform),
    ) {
        let c = criteria(&s, &a, &o, &i, &p);
        let first = compose(&catalog(), &c);
        let second = compose(&catalog(), &c);
        match (first, second) {
            (Ok(r1), Ok(r2)) => {
                let y1 = aiconform::yaml::to_string(&r1).unwrap();
                let y2 = aiconform::yaml::to_string(&r2).unwrap();
                prop_assert_eq!(&y1, &y2);
                let j1 = serde_json::to_string(&r1).unwrap();
                prop_assert_eq!(j1, serde_json::to_string(&r2).unwrap());
                assert_dependencies_first(&r1);
                // The YAML reads back to the same recipe.
                let back: Recipe = aiconform::yaml::from_str(&y1, "rendered").unwrap();
                prop_assert_eq!(back, r1);
            }
            (Err(e1), Err(e2)) => prop_assert_eq!(e1.to_string(), e2.to_string()),
            (a, b) => prop_assert!(false, "nondeterministic: {:?} vs {:?}", a.is_ok(), b.is_ok()),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random DAGs: the order contains every node once and respects every edge, whatever
    /// the insertion order.
    #[test]
    fn ordering_respects_random_dags(edges in proptest::collection::vec((0usize..12, 0usize..12), 0..40)) {
        use std::collections::BTreeMap;
        let mut deps: BTreeMap<String, Vec<String>> = (0..12).map(|i| (format!("c{i:02}"), Vec::new())).collect();
        for (a, b) in edges {
            // Only edges from higher to lower index, so the graph is acyclic.
            if a > b {
                deps.get_mut(&format!("c{a:02}")).unwrap().push(format!("c{b:02}"));
            }
        }
        let order = aiconform::recipe::order::deployment_order(&deps).unwrap();
        prop_assert_eq!(order.len(), 12);
        for (node, ds) in &deps {
            let at = order.iter().position(|n| n == node).unwrap();
            for d in ds {
                prop_assert!(order.iter().position(|n| n == d).unwrap() < at);
            }
        }
    }
}

/// The fabric and the large-message floors every shipped training combination carries.
#[test]
fn training_recipes_carry_their_fabric_and_floors() {
    use aiconform::suites::nccl::{Algo, Expectation, Fabric, Scope, Thresholds};
    let catalog = catalog();
    // (service, accelerator, fabric, multi-node floor default/ring, single-node default floor)
    let table = [
        ("eks", "h100", Fabric::Efa, 300.0, 300.0, 460.0),
        ("eks", "b200", Fabric::Efa, 300.0, 300.0, 750.0),
        ("eks", "gb200", Fabric::Mnnvl, 500.0, 500.0, 610.0),
        ("gke", "h100", Fabric::Tcpxo, 250.0, 160.0, 460.0),
        ("gke", "b200", Fabric::RoceGdr, 300.0, 300.0, 750.0),
        ("gke", "gb200", Fabric::Mnnvl, 500.0, 500.0, 610.0),
        ("aks", "h100", Fabric::InfinibandGdr, 300.0, 300.0, 460.0),
        ("aks", "b200", Fabric::InfinibandGdr, 300.0, 300.0, 750.0),
        ("aks", "gb200", Fabric::Mnnvl, 500.0, 500.0, 610.0),
    ];
    for (service, accelerator, fabric, multi, multi_ring, single) in table {
        let c = criteria(service, accelerator, "any", "training", "any");
        let recipe = compose(&catalog, &c).unwrap_or_else(|e| panic!("{c}: {e}"));
        let nccl = recipe.validation.get("nccl");
        let exp = Expectation::for_recipe(&recipe.criteria, nccl).expect("expectation");
        assert_eq!(exp.fabric, fabric, "{c}");
        assert!(exp.nvlink, "{c}: HGX / NVL72 GPUs are NVLink-connected");
        assert_eq!(
            exp.nvls,
            service != "gke" || accelerator != "h100",
            "{c}: A3 Mega runs with NVLS off"
        );
        let t =
            Thresholds::from_json(&recipe.validation["nccl"]["allReduce"]).expect("floors parse");
        assert_eq!(t.large_message_bytes, Some(8_589_934_592), "{c}");
        assert_eq!(
            t.min_large_message_bus_bandwidth_g_bps, None,
            "{c}: floors, not a flat minimum"
        );
        for (scope, algo, want) in [
            (Scope::MultiNode, Algo::Default, multi),
            (Scope::MultiNode, Algo::Ring, multi_ring),
            (Scope::SingleNode, Algo::Default, single),
        ] {
            let r = t.reference(scope, algo);
            let floor = r
                .floor
                .unwrap_or_else(|| panic!("{c}: no {scope:?} {algo:?} floor"));
            assert_eq!(floor.busbw_gbps, want, "{c}: {scope:?} {algo:?}");
            assert!(!floor.source.is_empty(), "{c}");
            let anchor = r
                .anchor
                .unwrap_or_else(|| panic!("{c}: no {scope:?} {algo:?} anchor"));
            assert!(
                anchor.busbw_gbps >= floor.busbw_gbps,
                "{c}: anchor below floor"
            );
            assert!(!anchor.source.is_empty(), "{c}");
        }
    }
}

/// The public-figure fixtures judged with the recipe of their platform: fabric and floor.
#[test]
fn public_fixtures_pass_their_platform_recipe_and_faults_fail() {
    use aiconform::suites::nccl::{
        BandwidthCheck, Expectation, Thresholds, TransportVerdict, parse,
    };
    let catalog = catalog();
    let cases = [
        (
            "aws-p5-2node-efa.txt",
            ["eks", "h100", "ubuntu", "training", "kubeflow"],
            true,
            true,
        ),
        (
            "gke-a3mega-2node-tcpxo.txt",
            ["gke", "h100", "cos", "training", "kubeflow"],
            true,
            true,
        ),
        (
            "azure-ndh100v5-1node-nvls.txt",
            ["aks", "h100", "ubuntu", "inference", "dynamo"],
            true,
            true,
        ),
        (
            "coreweave-gb200-nvl72.txt",
            ["gke", "gb200", "cos", "training", "kubeflow"],
            true,
            true,
        ),
        (
            "gke-a3mega-2node-socket.txt",
            ["gke", "h100", "cos", "training", "kubeflow"],
            false,
            false,
        ),
        (
            "h100-2node-ib-no-gdr.txt",
            ["aks", "h100", "ubuntu", "training", "kubeflow"],
            false,
            false,
        ),
        (
            "h100-8gpu-shm-fallback-2.11.txt",
            ["aks", "h100", "ubuntu", "inference", "dynamo"],
            false,
            false,
        ),
        (
            "h100-8gpu-no-nvls.txt",
            ["aks", "h100", "ubuntu", "inference", "dynamo"],
            false,
            true,
        ),
        (
            "h100-2node-ib-exit7.txt",
            ["aks", "h100", "ubuntu", "training", "kubeflow"],
            true,
            false,
        ),
    ];
    for (file, [s, a, o, i, p], transport_ok, bandwidth_ok) in cases {
        let c = criteria(s, a, o, i, p);
        let recipe = compose(&catalog, &c).unwrap();
        let path = format!("{}/fixtures/nccl/{file}", env!("CARGO_MANIFEST_DIR"));
        let log = parse(&std::fs::read_to_string(&path).expect("fixture"));
        let exp = Expectation::for_recipe(&recipe.criteria, recipe.validation.get("nccl")).unwrap();
        let verdict = log.judge_transport(&exp);
        assert_eq!(
            matches!(verdict, TransportVerdict::Pass(_)),
            transport_ok,
            "{file} on {c}: {verdict:?}"
        );
        if !transport_ok {
            assert!(
                matches!(&verdict, TransportVerdict::Fail(m) if m.contains('`')),
                "{file}: {verdict:?}"
            );
        }
        let t = Thresholds::from_json(&recipe.validation["nccl"]["allReduce"]).unwrap();
        let BandwidthCheck::Judged(report) = log.check_bandwidth(&t, None) else {
            panic!("{file}: the fixture shows its topology");
        };
        assert_eq!(
            report.verdict.is_ok(),
            bandwidth_ok,
            "{file} on {c}: {:?}",
            report.verdict
        );
        assert!(
            report.reference.floor.is_some() && report.reference.anchor.is_some(),
            "{file}"
        );
    }
}

/// A published log is often only the table: without `# Rank ... on HOST` lines or NCCL's comm
/// lines nothing says how many nodes ran, so the 2-node GKE TCPXO figure (333.51 GB/s) is not
/// judged against the one-node NVLink floor (460) unless one node is stated.
#[test]
fn a_log_without_rank_lines_is_judged_only_with_a_known_node_count() {
    use aiconform::suites::nccl::{BandwidthCheck, Thresholds, parse};
    let recipe = compose(
        &catalog(),
        &criteria("gke", "h100", "cos", "training", "kubeflow"),
    )
    .unwrap();
    let t = Thresholds::from_json(&recipe.validation["nccl"]["allReduce"]).unwrap();
    let path = format!(
        "{}/fixtures/nccl/gke-a3mega-2node-tcpxo.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    let table_only: String = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("#  Rank") && !l.contains("NCCL INFO"))
        .map(|l| format!("{l}\n"))
        .collect();
    let log = parse(&table_only);
    assert_eq!(log.hosts(), 0);

    let BandwidthCheck::Undetermined(why) = log.check_bandwidth(&t, None) else {
        panic!("judged without a topology");
    };
    assert!(why.contains("topology unknown"), "{why}");
    assert!(
        why.contains("as a multiNode run it passes") && why.contains("below the floor 460"),
        "{why}"
    );
    assert!(why.contains("set params.nodes"), "{why}");

    let BandwidthCheck::Judged(two) = log.check_bandwidth(&t, Some(2)) else {
        panic!("2 nodes stated");
    };
    let summary = two.verdict.expect("meets the multi-node floor 250");
    assert!(summary.contains("2 node(s) as stated"), "{summary}");
    let BandwidthCheck::Judged(one) = log.check_bandwidth(&t, Some(1)) else {
        panic!("1 node stated");
    };
    assert!(one.verdict.is_err(), "333.51 < 460 on one node");

    // The log's own rank lines win over a stated count.
    let full = parse(&std::fs::read_to_string(&path).unwrap());
    let BandwidthCheck::Judged(r) = full.check_bandwidth(&t, Some(1)) else {
        panic!("the log shows 2 nodes");
    };
    assert!(r.verdict.is_ok(), "{:?}", r.verdict);
}

// --- `--set` overrides, aliases, snapshots and node counts -------------------------------

use aiconform::recipe::aliases::ComponentAliases;
use aiconform::recipe::resolve::declared_components;
use aiconform::recipe::set::SetExpr;
use aiconform::recipe::{Adjustments, compose_with};

fn with_sets(c: &Criteria, sets: &[&str]) -> Result<Recipe, aiconform::recipe::RecipeError> {
    let adj = Adjustments {
        sets: sets.iter().map(|s| SetExpr::parse(s).unwrap()).collect(),
        ..Default::default()
    };
    compose_with(&catalog(), c, &adj)
}

fn eks_training() -> Criteria {
    criteria("eks", "h100", "ubuntu", "training", "kubeflow")
}

#[test]
fn set_overrides_values_through_aliases_and_records_them() {
    let plain = compose(&catalog(), &eks_training()).unwrap();
    let r = with_sets(
        &eks_training(),
        &[
            "gpuoperator:driver.version=1.0",
            "gpu-operator:driver.version=\"580.1\"",
            "dradriver:newKey.nested=7",
            "gpu-operator:cdi.enabled=false",
        ],
    )
    .unwrap();
    let gpu = &r.component("gpu-operator").unwrap().values;
    // The last expression for a path wins; quotes keep the string.
    assert_eq!(gpu["driver"]["version"], serde_json::json!("580.1"));
    assert_eq!(gpu["cdi"]["enabled"], serde_json::json!(false));
    let dra = &r.component("nvidia-dra-driver-gpu").unwrap().values;
    assert_eq!(dra["newKey"]["nested"], serde_json::json!(7));
    let recorded: Vec<(String, String)> = r
        .metadata
        .overrides
        .iter()
        .map(|o| (o.component.clone(), format!("{}={}", o.path, o.value)))
        .collect();
    assert_eq!(
        recorded,
        [
            ("gpu-operator".into(), "driver.version=\"580.1\"".into()),
            ("nvidia-dra-driver-gpu".into(), "newKey.nested=7".into()),
            ("gpu-operator".into(), "cdi.enabled=false".into()),
        ]
    );
    assert_eq!(r.metadata.value_count, plain.metadata.value_count + 1);
    // Only the overridden values and the record differ.
    assert_eq!(r.components.len(), plain.components.len());
    assert_eq!(r.deployment_order, plain.deployment_order);
    // Deterministic, and the record reads back.
    let again = with_sets(
        &eks_training(),
        &[
            "gpuoperator:driver.version=1.0",
            "gpu-operator:driver.version=\"580.1\"",
            "dradriver:newKey.nested=7",
            "gpu-operator:cdi.enabled=false",
        ],
    )
    .unwrap();
    let y = aiconform::yaml::to_string(&r).unwrap();
    assert_eq!(y, aiconform::yaml::to_string(&again).unwrap());
    assert!(y.contains("overrides:"), "{y}");
    let back: Recipe = aiconform::yaml::from_str(&y, "rendered").unwrap();
    assert_eq!(back, r);
}

#[test]
fn recipes_without_overrides_carry_no_new_metadata() {
    let y = render(&eks_training());
    for key in ["overrides:", "excludedOverlays:", "constraintWarnings:"] {
        assert!(!y.contains(key), "{key} in\n{y}");
    }
    let r = compose(&catalog(), &eks_training()).unwrap();
    assert_eq!(r.criteria.len(), 5, "no nodes criterion unless given");
}

#[test]
fn enabled_false_removes_a_component_and_reports_dependents() {
    let r = with_sets(&eks_training(), &["certmanager:enabled=false"]).unwrap();
    assert!(r.component("cert-manager").is_none());
    assert!(!r.deployment_order.contains(&"cert-manager".to_string()));
    assert!(
        r.components
            .iter()
            .all(|c| !c.dependency_refs.contains(&"cert-manager".into()))
    );
    let o = &r.metadata.overrides[0];
    assert_eq!(
        (o.component.as_str(), o.path.as_str()),
        ("cert-manager", "enabled")
    );
    assert!(
        o.dependents.contains(&"jobset".to_string()),
        "{:?}",
        o.dependents
    );
    assert!(o.dependents.windows(2).all(|w| w[0] < w[1]), "sorted");
    assert_dependencies_first(&r);
    // The last one wins: removed then restored is the plain recipe's component set.
    let r = with_sets(
        &eks_training(),
        &["cert-manager:enabled=false", "cert-manager:enabled=true"],
    )
    .unwrap();
    assert!(r.component("cert-manager").is_some());
}

#[test]
fn enabled_true_restores_what_an_overlay_removed() {
    // eks-training removes network-operator; restoring brings back its base definition.
    let plain = compose(&catalog(), &eks_training()).unwrap();
    assert!(plain.component("network-operator").is_none());
    let r = with_sets(&eks_training(), &["networkoperator:enabled=true"]).unwrap();
    let restored = r.component("network-operator").expect("restored");
    let generic = compose(
        &catalog(),
        &criteria("any", "any", "any", "training", "any"),
    )
    .unwrap();
    assert_eq!(
        restored.version,
        generic.component("network-operator").unwrap().version
    );
    assert_dependencies_first(&r);
    // A component no applied overlay declared cannot be conjured up.
    let e = with_sets(&eks_training(), &["dynamo-platform:enabled=true"]).unwrap_err();
    assert!(e.to_string().contains("nothing to restore"), "{e}");
}

#[test]
fn set_errors_name_the_expression_and_the_fix() {
    let c = eks_training();
    let e = with_sets(&c, &["gpu-opertor:driver.version=1"])
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("set `gpu-opertor:driver.version=1`"), "{e}");
    assert!(e.contains("unknown component `gpu-opertor`"), "{e}");
    assert!(e.contains("gpu-operator"), "{e}");
    assert!(e.contains("`gpuoperator`"), "{e}");
    let e = with_sets(&c, &["dynamo-platform:x=1"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("not part of this recipe"), "{e}");
    let e = with_sets(&c, &["gpu-operator:driver.version.x=1"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("`driver.version` is a string"), "{e}");
    let e = with_sets(&c, &["kai:x=1", "kai-scheduler:enabled=false"])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("removed by `kai-scheduler:enabled=false`"),
        "{e}"
    );
}

#[test]
fn set_applies_to_a_recipe_file_too() {
    let mut r = compose(&catalog(), &eks_training()).unwrap();
    let aliases = ComponentAliases::load(&RecipeFiles::builtin()).unwrap();
    aiconform::recipe::overrides::apply_texts(
        &mut r,
        &[
            "kai:enabled=false".into(),
            "gpuoperator:driver.version=580.95.05".into(),
        ],
        &aliases,
    )
    .unwrap();
    assert!(r.component("kai-scheduler").is_none());
    let o = &r.metadata.overrides[0];
    assert!(
        o.dependents.contains(&"kubeflow-trainer".to_string()),
        "{o:?}"
    );
    let e = aiconform::recipe::overrides::apply_texts(
        &mut r,
        &["network-operator:enabled=true".into()],
        &aliases,
    )
    .unwrap_err();
    assert!(e.to_string().contains("nothing to restore"), "{e}");
}

#[test]
fn every_alias_names_a_declared_component_and_shadows_none() {
    let catalog = catalog();
    let declared = declared_components(&catalog);
    let aliases = ComponentAliases::load(&catalog.files).unwrap();
    for (alias, target) in &aliases.aliases {
        assert!(
            declared.contains(target),
            "alias {alias} -> unknown {target}"
        );
        assert!(
            !declared.contains(alias),
            "alias {alias} shadows a component"
        );
    }
    for c in declared.iter().filter(|c| c.contains('-')) {
        assert!(
            aliases.of(c).contains(&c.replace('-', "").as_str()),
            "{c} lacks its hyphen-less alias"
        );
    }
    assert_eq!(aliases.aliases["gpuoperator"], "gpu-operator");
    assert_eq!(aliases.aliases["dradriver"], "nvidia-dra-driver-gpu");
}

fn fixture_snapshot() -> aiconform::snapshot::model::Snapshot {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/snapshots/h100-eks.yaml");
    aiconform::snapshot::load_file(&path).unwrap()
}

#[test]
fn criteria_are_derived_from_a_snapshot() {
    use aiconform::readiness::fit::{criteria_of, derive_criteria};
    let derived = derive_criteria(&fixture_snapshot());
    let c = criteria_of(&derived);
    assert_eq!(
        c.to_string(),
        "service=eks accelerator=h100 os=ubuntu intent=any platform=any"
    );
    assert!(
        derived
            .iter()
            .any(|d| d.evidence.contains("v1.34.2-eks-a737599")),
        "{derived:?}"
    );

    // No version hint: the provider ID decides; nodes that disagree leave OS open.
    let mut snap = fixture_snapshot();
    snap.cluster.server_version.git_version = "v1.34.2".into();
    for n in &mut snap.cluster.nodes {
        n.provider_id = format!("azure:///subscriptions/s/{}", n.name);
    }
    snap.cluster.nodes[2].node_info.os_image = "Red Hat Enterprise Linux 9.4".into();
    if let aiconform::snapshot::model::AgentOutcome::Collected { report } =
        &mut snap.cluster.nodes[2].agent
    {
        report.os_release.insert("ID".into(), "rhel".into());
    }
    let c = criteria_of(&derive_criteria(&snap));
    assert_eq!(c.get(Dimension::Service), Some("aks"));
    assert_eq!(c.get(Dimension::Os), None, "{c}");
}

#[test]
fn overlays_contradicted_by_the_snapshot_are_excluded_with_descendants() {
    use aiconform::readiness::fit::adjustments;
    let catalog = catalog();
    let c = criteria("eks", "h100", "ubuntu", "training", "any");
    let snap = fixture_snapshot();
    let adj = adjustments(&catalog, &c, &snap).unwrap();
    assert!(adj.excluded.is_empty(), "{:?}", adj.excluded);

    // An EKS version below the eks overlay's `>= 1.32.4` drops eks and eks-training.
    let mut old = snap.clone();
    old.cluster.server_version.git_version = "v1.32.1-eks-abc".into();
    let adj = adjustments(&catalog, &c, &old).unwrap();
    let names: Vec<&str> = adj.excluded.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["eks", "eks-training"], "{:?}", adj.excluded);
    assert!(
        adj.excluded[0]
            .reason
            .contains("K8s.server.version >= 1.32.4"),
        "{:?}",
        adj.excluded
    );
    assert!(
        adj.excluded[1]
            .reason
            .contains("its base `eks` is excluded")
    );
    let r = compose_with(&catalog, &c, &adj).unwrap();
    assert!(
        !r.metadata
            .applied_overlays
            .iter()
            .any(|o| o.starts_with("eks"))
    );
    assert!(r.component("aws-efa").is_none() && r.component("aws-ebs-csi-driver").is_none());
    assert_eq!(r.metadata.excluded_overlays, adj.excluded);
    let y = aiconform::yaml::to_string(&r).unwrap();
    assert!(y.contains("excludedOverlays:"), "{y}");
}

fn node_catalog() -> Catalog {
    let mut files = RecipeFiles::builtin();
    files.push_memory_layer(
        "test",
        &[(
            "overlays/large.yaml",
            "apiVersion: aiconform.dev/v1alpha1\nkind: Overlay\nname: large\ncriteria:\n  nodes: \">= 8\"\ncomponentRefs:\n  - name: gpu-operator\n    values: {large: true}\n",
        )],
    );
    Catalog::load(files).unwrap()
}

#[test]
fn node_count_selects_overlays_with_a_node_requirement() {
    let catalog = node_catalog();
    let mut c = criteria("eks", "any", "any", "any", "any");
    let has_large = |c: &Criteria| {
        let r = compose(&catalog, c).unwrap();
        r.metadata.applied_overlays.contains(&"large".to_string())
    };
    assert!(
        !has_large(&c),
        "no count given: a node overlay does not apply"
    );
    c.set_node_count(4);
    assert!(!has_large(&c));
    c.set_node_count(8);
    assert!(has_large(&c));
    let r = compose(&catalog, &c).unwrap();
    assert_eq!(r.criteria["nodes"], "8");
    assert_eq!(r.metadata.name, "eks-8-nodes");
    // Its specificity sits with one-dimension overlays: after base, sorted by name.
    assert_eq!(r.metadata.applied_overlays, ["base", "eks", "large"]);
    c.set_node_count(0);
    assert!(c.nodes().is_none(), "0 means any");
}

#[test]
fn bad_node_requirements_are_named() {
    let mut files = RecipeFiles::builtin();
    files.push_memory_layer(
        "test",
        &[(
            "overlays/bad.yaml",
            "apiVersion: aiconform.dev/v1alpha1\nkind: Overlay\nname: bad\ncriteria:\n  nodes: \">= lots\"\n",
        )],
    );
    let e = Catalog::load(files).unwrap_err().to_string();
    assert!(e.contains("test:overlays/bad.yaml"), "{e}");
    assert!(e.contains("invalid nodes `>= lots`"), "{e}");
}

#[test]
fn criteria_aliases() {
    let mut c = Criteria::new();
    c.set_alias(Dimension::Service, "self-managed").unwrap();
    assert_eq!(c.get(Dimension::Service), Some("generic"));
    c.set_alias(Dimension::Service, "Vanilla").unwrap();
    assert_eq!(c.get(Dimension::Service), Some("generic"));
    c.set_alias(Dimension::Service, "any").unwrap();
    assert!(c.is_empty());
    c.set_alias(Dimension::Os, "al2023").unwrap();
    assert_eq!(c.get(Dimension::Os), Some("amazonlinux"));
    c.set_alias(Dimension::Os, "AL2").unwrap();
    assert_eq!(c.get(Dimension::Os), Some("amazonlinux"));
    // The strict setter (the API's) does not take aliases.
    assert!(Criteria::new().with(Dimension::Os, "al2").is_err());
}

/// `validation.<requirement>.component` of a recipe, if some component proves it.
fn prover<'a>(recipe: &'a Recipe, requirement: &str) -> Option<&'a str> {
    recipe
        .validation
        .get(requirement)?
        .get("component")?
        .as_str()
}

#[test]
fn every_shipped_recipe_names_the_components_that_prove_conformance() {
    let catalog = catalog();
    for [s, a, o, i, p] in SHIPPED {
        let c = criteria(s, a, o, i, p);
        let r = compose(&catalog, &c).unwrap_or_else(|e| panic!("{c}: {e}"));
        let operator = match *p {
            "kubeflow" => Some("kubeflow-trainer"),
            "dynamo" => Some("dynamo-platform"),
            _ => None,
        };
        assert_eq!(prover(&r, "robustController"), operator, "{c}");
        if let Some(op) = operator {
            let rc = &r.validation["robustController"];
            assert!(r.component(op).is_some(), "{c}: {op} is deployed");
            let ns = rc["namespace"].as_str().expect("namespace");
            assert_eq!(ns, r.component(op).expect("operator").namespace, "{c}");
            for key in ["podSelector", "apiVersion", "kind", "plural", "source"] {
                assert!(
                    rc[key].as_str().is_some_and(|v| !v.is_empty()),
                    "{c}: {key}"
                );
            }
            assert!(rc["invalid"].is_object() && rc["valid"].is_object(), "{c}");
        }
        let gateway = (*i == "inference").then_some("kgateway");
        assert_eq!(prover(&r, "inferenceGateway"), gateway, "{c}");
        assert_eq!(prover(&r, "inferenceIngress"), gateway, "{c}");
        if gateway.is_some() {
            assert_eq!(r.validation["inferenceGateway"]["gatewayClass"], "kgateway");
        }
        assert_eq!(
            prover(&r, "aiServiceMetrics"),
            Some("kube-prometheus-stack"),
            "{c}"
        );
        assert_eq!(
            r.validation["aiServiceMetrics"]["prometheusService"],
            "monitoring/kube-prometheus-stack-prometheus:9090",
            "{c}"
        );
        assert_eq!(prover(&r, "gangScheduling"), Some("kai-scheduler"), "{c}");
        let queue = if *i == "training" {
            "training"
        } else {
            "default-queue"
        };
        assert_eq!(r.validation["gangScheduling"]["queue"], queue, "{c}");
    }
}

#[test]
fn a_removed_component_proves_nothing() {
    let c = criteria("eks", "h100", "ubuntu", "training", "kubeflow");
    let r = with_sets(
        &c,
        &[
            "kubeflow-trainer:enabled=false",
            "kube-prometheus-stack:enabled=false",
        ],
    );
    // kube-prometheus-stack has dependents; removing it is still allowed and reported.
    let r = r.expect("compose");
    assert_eq!(prover(&r, "robustController"), None);
    assert_eq!(prover(&r, "aiServiceMetrics"), None);
    assert_eq!(prover(&r, "gangScheduling"), Some("kai-scheduler"));

    // A recipe file loses them the same way.
    let mut file = compose(&catalog(), &c).expect("compose");
    let aliases = ComponentAliases::load(&RecipeFiles::builtin()).unwrap();
    aiconform::recipe::overrides::apply_texts(
        &mut file,
        &["kubeflow-trainer:enabled=false".to_string()],
        &aliases,
    )
    .expect("set");
    assert_eq!(prover(&file, "robustController"), None);
    assert!(file.validation.get("nccl").is_some(), "other settings stay");
}

/// Every value of every dimension composes a recipe on its own, and the recipe applies an
/// overlay that pins exactly that value (none is a silent base-only recipe).
#[test]
fn every_criteria_value_composes_with_its_own_overlay() {
    let catalog = catalog();
    for d in Dimension::ALL {
        for value in d.allowed() {
            let c = Criteria::new().with(d, value).unwrap();
            let recipe = compose(&catalog, &c).unwrap_or_else(|e| panic!("{c}: {e}"));
            assert_dependencies_first(&recipe);
            let carried = recipe
                .metadata
                .applied_overlays
                .iter()
                .any(|name| catalog.overlays[name].criteria.get(d) == Some(*value));
            assert!(
                carried,
                "{c}: applied {:?}",
                recipe.metadata.applied_overlays
            );
            assert!(recipe.metadata.applied_overlays.len() > 1, "{c}: base only");
        }
    }
}

/// Each new value also composes in a realistic full combination.
#[test]
fn new_values_compose_in_full_combinations() {
    let catalog = catalog();
    for [s, a, o, i, p] in [
        ["oke", "gb200", "ol", "training", "slurm"],
        ["oke", "h100", "ol", "inference", "nim"],
        ["eks", "gb300", "amazonlinux", "training", "kubeflow"],
        ["eks", "h200", "ubuntu", "inference", "nim"],
        ["generic", "a100", "talos", "training", "kubeflow"],
        ["rke2", "vr200", "ubuntu", "training", "slurm"],
        ["bcm", "h100", "ubuntu", "training", "runai"],
        ["ocp", "l40s", "rhel", "inference", "dynamo"],
        ["lke", "rtx-pro-6000", "ubuntu", "inference", "nim"],
        ["k0s", "l40", "ubuntu", "inference", "runai"],
        ["metal3", "b200", "ubuntu", "training", "kubeflow"],
    ] {
        let c = criteria(s, a, o, i, p);
        let recipe = compose(&catalog, &c).unwrap_or_else(|e| panic!("{c}: {e}"));
        assert_dependencies_first(&recipe);
    }
}

#[test]
fn self_managed_means_generic() {
    let mut c = Criteria::new();
    c.set_alias(Dimension::Service, "self-managed").unwrap();
    let r = compose(&catalog(), &c).unwrap();
    assert_eq!(r.criteria["service"], "generic");
    assert!(r.metadata.applied_overlays.contains(&"generic".to_string()));
}

#[test]
fn a_stated_criterion_no_overlay_carries_is_an_error_naming_it() {
    let mut files = RecipeFiles::builtin();
    // A site layer that takes the b200 overlay over for another accelerator leaves b200
    // without an overlay.
    files.push_memory_layer(
        "site",
        &[(
            "overlays/b200.yaml",
            "apiVersion: aiconform.dev/v1alpha1\nkind: Overlay\nname: b200\ncriteria:\n  accelerator: h100\n",
        )],
    );
    let catalog = Catalog::load(files).unwrap();
    let c = criteria("eks", "b200", "any", "training", "any");
    let e = compose(&catalog, &c).unwrap_err();
    assert!(
        matches!(
            &e,
            aiconform::recipe::RecipeError::UncoveredCriterion { dimension: Dimension::Accelerator, value, .. } if value == "b200"
        ),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("no overlay carries accelerator `b200`"),
        "{msg}"
    );
    assert!(msg.contains("--data DIR"), "{msg}");
    assert!(msg.contains("eks-training"), "lists what applies: {msg}");
    // The other dimensions are still carried.
    assert!(compose(&catalog, &criteria("eks", "h100", "any", "training", "any")).is_ok());
}

#[test]
fn recipe_list_matrix() {
    let m = aiconform::recipe::matrix::matrix(&catalog());
    // Deterministic: a freshly loaded catalog gives the same matrix.
    assert_eq!(m, aiconform::recipe::matrix::matrix(&catalog()));
    assert!(m.leaves.iter().all(|l| l.stages.recipe), "{m:#?}");
    let names: Vec<&str> = m.leaves.iter().map(|l| l.name.as_str()).collect();
    assert!(names.contains(&"eks-training-kubeflow"), "{names:?}");
    assert!(
        !names.contains(&"eks"),
        "refined by eks-training: {names:?}"
    );
    let kubeflow = m
        .leaves
        .iter()
        .find(|l| l.name == "eks-training-kubeflow")
        .unwrap();
    assert!(kubeflow.stages.deploy && kubeflow.stages.conformance);
    assert!(
        !kubeflow.stages.performance,
        "no accelerator: one-node floors are the catch-all"
    );
    insta::assert_snapshot!(aiconform::recipe::matrix::render_table(&m));
}

/// Every combination of values (and `any`) across the five dimensions composes: overlays of
/// different dimensions never conflict (a removed component amended later, a dependency on
/// one that a layer removes). The REST API serves any of them, so a failure here would be a
/// 500 there.
#[test]
fn every_combination_of_values_composes() {
    let catalog = catalog();
    let values = |d: Dimension| -> Vec<&'static str> {
        let mut v = d.allowed().to_vec();
        v.push("any");
        v
    };
    let mut count = 0;
    for s in values(Dimension::Service) {
        for a in values(Dimension::Accelerator) {
            for o in values(Dimension::Os) {
                for i in values(Dimension::Intent) {
                    for p in values(Dimension::Platform) {
                        let c = criteria(s, a, o, i, p);
                        if let Err(e) = compose(&catalog, &c) {
                            panic!("{c}: {e}");
                        }
                        count += 1;
                    }
                }
            }
        }
    }
    assert_eq!(count, 13 * 11 * 7 * 3 * 6);
}
