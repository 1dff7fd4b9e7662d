//! Conformance parameters that components declare: which requirement a component proves and
//! with which case parameters (`componentRefs[].conformance.<requirement>`). Composition turns
//! the claims of the recipe's components into `validation.<requirement>`, each naming the
//! component and the upstream source of its facts. Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::merge::deep_merge;
use super::overlay::{ComponentRef, ConformanceSpec};

/// Keys composition adds to each requirement's parameters; an overlay may not set them.
pub const RESERVED: [&str; 2] = ["component", "source"];

/// One component's claim to prove a requirement, from the overlay at position `seq` of the
/// applied overlays (later overlays win).
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub requirement: String,
    pub component: String,
    pub seq: usize,
    pub spec: ConformanceSpec,
}

/// Requirement keys are the suite's validation sections, so they must look like one.
fn is_requirement_key(key: &str) -> bool {
    key.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && key.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Why a component's `conformance` entries cannot be used, if they cannot: checked when the
/// catalog loads so composing never meets a malformed claim.
pub fn check_ref(cref: &ComponentRef) -> Result<(), String> {
    for (key, spec) in &cref.conformance {
        let at = format!("component `{}`: conformance.{key}", cref.name);
        if !is_requirement_key(key) {
            return Err(format!(
                "{at}: the key must be a validation section name in lowerCamelCase (e.g. robustController, gangScheduling)"
            ));
        }
        if spec.source.trim().is_empty() {
            return Err(format!(
                "{at}: source is empty; name the upstream file the parameters come from"
            ));
        }
        let Some(params) = spec.params.as_object() else {
            return Err(format!("{at}: params must be a mapping"));
        };
        if let Some(k) = RESERVED.iter().find(|k| params.contains_key(**k)) {
            return Err(format!(
                "{at}: params.{k} is set by composition (the component and its source); remove it"
            ));
        }
    }
    Ok(())
}

/// The first requirement two components of one overlay both claim, as
/// `(requirement, first, second)`: within a layer there is no "later" to decide.
pub fn double_claim(refs: &[ComponentRef]) -> Option<(String, String, String)> {
    let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
    for r in refs {
        for key in r.conformance.keys() {
            if let Some(first) = owner.insert(key.as_str(), r.name.as_str()) {
                return Some((key.clone(), first.to_string(), r.name.clone()));
            }
        }
    }
    None
}

/// The claims of `component`, recorded per requirement as composition applies overlays.
pub fn claims(component: &str, recorded: BTreeMap<String, (usize, ConformanceSpec)>) -> Vec<Claim> {
    recorded
        .into_iter()
        .map(|(requirement, (seq, spec))| Claim {
            requirement,
            component: component.to_string(),
            seq,
            spec,
        })
        .collect()
}

/// `validation.<requirement>` for each requirement some component of the recipe (`present`)
/// claims: the claim of the latest overlay wins, so a layer can hand a requirement to another
/// component; the parameters gain `component` and `source` so reports name the prover.
pub fn proven(claims: &[Claim], present: &BTreeSet<&str>) -> Value {
    let mut winner: BTreeMap<&str, &Claim> = BTreeMap::new();
    for c in claims
        .iter()
        .filter(|c| present.contains(c.component.as_str()))
    {
        let newer = winner
            .get(c.requirement.as_str())
            .is_none_or(|w| (c.seq, c.component.as_str()) > (w.seq, w.component.as_str()));
        if newer {
            winner.insert(&c.requirement, c);
        }
    }
    let mut out = Map::new();
    for (requirement, c) in winner {
        let mut params = c.spec.params.as_object().cloned().unwrap_or_default();
        params.insert("component".into(), Value::String(c.component.clone()));
        params.insert("source".into(), Value::String(c.spec.source.clone()));
        out.insert(requirement.to_string(), Value::Object(params));
    }
    Value::Object(out)
}

/// The recipe's validation: the components' proven parameters, with the overlays' own
/// `validation` deep-merged over them (hand-written settings adjust a component's).
pub fn compose_validation(claims: &[Claim], present: &BTreeSet<&str>, overlays: &Value) -> Value {
    let mut v = proven(claims, present);
    deep_merge(&mut v, overlays);
    v
}

/// Drop the requirement parameters that name `component`: a removed component proves nothing.
pub fn forget_component(validation: &mut Value, component: &str) {
    if let Some(map) = validation.as_object_mut() {
        map.retain(|_, v| v.get("component").and_then(Value::as_str) != Some(component));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(params: Value) -> ConformanceSpec {
        ConformanceSpec {
            source: "upstream chart".into(),
            params,
        }
    }

    fn claim(req: &str, component: &str, seq: usize, params: Value) -> Claim {
        Claim {
            requirement: req.into(),
            component: component.into(),
            seq,
            spec: spec(params),
        }
    }

    #[test]
    fn latest_overlay_wins_per_requirement_and_names_the_component() {
        let claims = [
            claim(
                "gangScheduling",
                "kai-scheduler",
                0,
                json!({"queue": "default-queue"}),
            ),
            claim("gangScheduling", "kueue", 3, json!({"clusterQueue": "cq"})),
            claim(
                "aiServiceMetrics",
                "kube-prometheus-stack",
                0,
                json!({"x": 1}),
            ),
        ];
        let all: BTreeSet<&str> = ["kai-scheduler", "kueue", "kube-prometheus-stack"].into();
        let v = proven(&claims, &all);
        assert_eq!(
            v["gangScheduling"],
            json!({"clusterQueue": "cq", "component": "kueue", "source": "upstream chart"})
        );
        assert_eq!(v["aiServiceMetrics"]["component"], "kube-prometheus-stack");
        let without_kueue: BTreeSet<&str> = ["kai-scheduler"].into();
        let v = proven(&claims, &without_kueue);
        assert_eq!(v["gangScheduling"]["component"], "kai-scheduler", "{v}");
        assert!(v.get("aiServiceMetrics").is_none(), "{v}");
    }

    #[test]
    fn overlay_validation_adjusts_proven_parameters() {
        let claims = [claim(
            "gangScheduling",
            "kai",
            0,
            json!({"queue": "a", "members": 2}),
        )];
        let present: BTreeSet<&str> = ["kai"].into();
        let v = compose_validation(
            &claims,
            &present,
            &json!({"gangScheduling": {"queue": "b"}, "nccl": {"fabric": "efa"}}),
        );
        assert_eq!(v["gangScheduling"]["queue"], "b");
        assert_eq!(v["gangScheduling"]["members"], 2);
        assert_eq!(v["nccl"]["fabric"], "efa");
    }

    #[test]
    fn forgetting_a_component_drops_what_it_proved() {
        let mut v = json!({"robustController": {"component": "op"}, "nccl": {"fabric": "efa"}});
        forget_component(&mut v, "op");
        assert_eq!(v, json!({"nccl": {"fabric": "efa"}}));
    }

    #[test]
    fn malformed_claims_are_rejected() {
        let with = |key: &str, s: ConformanceSpec| ComponentRef {
            name: "op".into(),
            conformance: [(key.to_string(), s)].into(),
            ..Default::default()
        };
        assert!(check_ref(&with("robustController", spec(json!({"a": 1})))).is_ok());
        let e = check_ref(&with("robust_controller", spec(json!({})))).unwrap_err();
        assert!(e.contains("lowerCamelCase"), "{e}");
        let e = check_ref(&with("robustController", spec(json!([1])))).unwrap_err();
        assert!(e.contains("params must be a mapping"), "{e}");
        let e = check_ref(&with("robustController", spec(json!({"component": "x"})))).unwrap_err();
        assert!(e.contains("params.component"), "{e}");
        let mut s = spec(json!({}));
        s.source = " ".into();
        let e = check_ref(&with("robustController", s)).unwrap_err();
        assert!(e.contains("source is empty"), "{e}");
    }

    #[test]
    fn two_components_of_one_overlay_may_not_claim_one_requirement() {
        let r = |name: &str| ComponentRef {
            name: name.into(),
            conformance: [("gangScheduling".to_string(), spec(json!({})))].into(),
            ..Default::default()
        };
        assert_eq!(
            double_claim(&[r("kai"), r("kueue")]),
            Some(("gangScheduling".into(), "kai".into(), "kueue".into()))
        );
        assert_eq!(double_claim(&[r("kai")]), None);
    }
}
