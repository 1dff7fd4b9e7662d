//! Where an agent may run: tolerations parsed from `--agent-toleration`, matched against a
//! node's taints, and why a node cannot take the agent pod.

use super::*;

pub fn tolerate_all() -> Toleration {
    Toleration {
        operator: Some("Exists".into()),
        ..Toleration::default()
    }
}

/// Parse `--agent-toleration`: `all`, `KEY`, `KEY=VALUE`, each optionally followed by
/// `:EFFECT` (NoSchedule, PreferNoSchedule, NoExecute).
pub fn parse_toleration(text: &str) -> Result<Toleration, String> {
    if text == "all" {
        return Ok(tolerate_all());
    }
    let (kv, effect) = match text.rsplit_once(':') {
        Some((kv, e)) => (kv, Some(e)),
        None => (text, None),
    };
    if let Some(e) = effect
        && !matches!(e, "NoSchedule" | "PreferNoSchedule" | "NoExecute")
    {
        return Err(format!(
            "toleration `{text}`: effect `{e}` is not NoSchedule, PreferNoSchedule or NoExecute"
        ));
    }
    let (key, value) = match kv.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (kv, None),
    };
    if key.is_empty() {
        return Err(format!(
            "toleration `{text}`: expected `all` or KEY[=VALUE][:EFFECT], e.g. nvidia.com/gpu:NoSchedule"
        ));
    }
    Ok(Toleration {
        key: Some(key.into()),
        operator: Some(if value.is_some() { "Equal" } else { "Exists" }.into()),
        value: value.map(str::to_string),
        effect: effect.map(str::to_string),
        ..Toleration::default()
    })
}

/// Whether a toleration matches a taint (Kubernetes semantics).
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if t.effect
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e != taint.effect)
    {
        return false;
    }
    let key = t.key.as_deref().unwrap_or("");
    if key.is_empty() {
        return t.operator.as_deref() == Some("Exists");
    }
    if key != taint.key {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        _ => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
    }
}

/// Why the agent cannot run on a target under these options, if it cannot: a NoSchedule or
/// NoExecute taint no toleration matches, or no GPU while one is required.
pub fn placement_problem(target: &AgentTarget, opts: &AgentJobOptions) -> Option<String> {
    if let Some(taint) = target.taints.iter().find(|taint| {
        matches!(taint.effect.as_str(), "NoSchedule" | "NoExecute")
            && !opts.tolerations.iter().any(|t| tolerates(t, taint))
    }) {
        let value = taint
            .value
            .as_deref()
            .map(|v| format!("={v}"))
            .unwrap_or_default();
        return Some(format!(
            "taint {}{value}:{} is not tolerated; add --agent-toleration {}:{}",
            taint.key, taint.effect, taint.key, taint.effect
        ));
    }
    if opts.require_gpu && target.gpus == 0 {
        return Some("no allocatable nvidia.com/gpu and --require-gpu is set".into());
    }
    None
}
