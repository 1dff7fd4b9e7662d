//! `deploy.sh` and `undeploy.sh` for the Helm deployer. Every value that reaches the shell
//! passed validation in [`super::render`] and is quoted here as well.

use std::fmt::Write as _;

use super::model::ChartLocation;
use super::planned::Planned;
use crate::recipe::model::ComponentType;

/// Quote for POSIX shells: bare when only safe characters, else single-quoted.
pub fn sh_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'_' | b'.' | b'/' | b':' | b'=' | b'@' | b'%' | b'+' | b',' | b'-'
                )
        });
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `"$here/<path>"`: bundle paths are made of safe characters (checked when rendering).
fn here(path: &str) -> String {
    format!("\"$here/{path}\"")
}

pub struct ScriptContext<'a> {
    pub recipe_name: &'a str,
    pub digest: &'a str,
    pub tool_version: &'a str,
}

fn header(
    out: &mut String,
    ctx: &ScriptContext<'_>,
    what: &str,
    notes: &str,
    tools: &[&str],
    body: &str,
) {
    let _ = writeln!(out, "#!/usr/bin/env bash");
    let _ = writeln!(out, "# {what} recipe {} ({}).", ctx.recipe_name, ctx.digest);
    let _ = writeln!(
        out,
        "# Rendered by aiconform {}: re-render with `aiconform bundle` rather than editing;",
        ctx.tool_version
    );
    let _ = writeln!(
        out,
        "# `aiconform bundle verify` reports any change to the bundle."
    );
    let _ = writeln!(out, "#");
    let _ = writeln!(
        out,
        "# Needs {} on PATH and a kubeconfig for the target cluster (KUBECONFIG or",
        tools.join(" and ")
    );
    if tools.contains(&"helm") {
        let _ = writeln!(
            out,
            "# HELM names another helm binary (Helm >= 3.13 or 4) than the one on PATH."
        );
    }
    let _ = writeln!(
        out,
        "# ~/.kube/config). TIMEOUT (default 10m) bounds each wait (Helm release, rollout, CRD)."
    );
    if !notes.is_empty() {
        let _ = writeln!(out, "#");
        out.push_str(notes);
    }
    let _ = writeln!(out, "set -euo pipefail");
    let _ = writeln!(out);
    // Only define what the body uses: shellcheck flags unused variables.
    if body.contains("\"$here/") {
        let _ = writeln!(
            out,
            "here=\"$(cd \"$(dirname \"${{BASH_SOURCE[0]}}\")\" && pwd)\""
        );
    }
    if body.contains("\"$timeout\"") {
        let _ = writeln!(out, "timeout=\"${{TIMEOUT:-10m}}\"");
    }
    if body.contains("\"$helm\"") {
        let _ = writeln!(out, "helm=\"${{HELM:-helm}}\"");
    }
    let _ = writeln!(out);
    let script = if what.starts_with("Deploy") {
        "deploy.sh"
    } else {
        "undeploy.sh"
    };
    let _ = writeln!(out, "require() {{");
    let _ = writeln!(out, "  if ! command -v \"$1\" >/dev/null 2>&1; then");
    let _ = writeln!(
        out,
        "    echo \"{script}: $1 is required but not on PATH; install it and re-run\" >&2"
    );
    let _ = writeln!(out, "    exit 1");
    let _ = writeln!(out, "  fi");
    let _ = writeln!(out, "}}");
    for tool in tools {
        if *tool == "helm" {
            let _ = writeln!(out, "require \"$helm\"");
            let _ = writeln!(
                out,
                "if ! \"$helm\" version --template '{{{{.Version}}}}' | grep -Eq '^v(3\\.(1[3-9]|[2-9][0-9])|4)\\.'; then"
            );
            let _ = writeln!(
                out,
                "  echo \"{script}: $helm is not Helm >= 3.13 (found $(\"$helm\" version --short 2>&1)); set HELM to a newer helm\" >&2"
            );
            let _ = writeln!(out, "  exit 1");
            let _ = writeln!(out, "fi");
        } else {
            let _ = writeln!(out, "require {tool}");
        }
    }
}

fn tools(planned: &[Planned]) -> Vec<&'static str> {
    if planned
        .iter()
        .any(|p| p.bc.component_type == ComponentType::Helm)
    {
        vec!["helm", "kubectl"]
    } else {
        vec!["kubectl"]
    }
}

fn describe(p: &Planned) -> String {
    let c = &p.bc;
    match c.component_type {
        ComponentType::Helm => format!(
            "Helm chart {} {}{} into namespace {}",
            c.chart.as_deref().unwrap_or(&c.name),
            c.version,
            if c.chart_archive.is_some() {
                " (vendored)"
            } else {
                ""
            },
            c.namespace
        ),
        ComponentType::Kustomize => {
            format!("kustomization {} into namespace {}", c.version, c.namespace)
        }
        ComponentType::Manifest => {
            format!("manifests {} into namespace {}", c.version, c.namespace)
        }
    }
}

pub fn deploy_sh(ctx: &ScriptContext<'_>, planned: &[Planned]) -> String {
    let mut out = String::new();
    let total = planned.len();
    let needs_ns = planned
        .iter()
        .any(|p| p.bc.component_type != ComponentType::Helm);
    if needs_ns {
        out.push_str(
            "\nensure_namespace() {\n  kubectl create namespace \"$1\" --dry-run=client -o yaml \\\n    | kubectl apply --server-side --field-manager=aiconform -f - >/dev/null\n}\n",
        );
    }
    for p in planned {
        let c = &p.bc;
        let ns = sh_quote(&c.namespace);
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "echo {}",
            sh_quote(&format!(
                "==> [{}/{total}] {}: {}",
                p.index,
                c.name,
                describe(p)
            ))
        );
        match c.component_type {
            ComponentType::Helm => {
                match c.chart_location() {
                    ChartLocation::Archive(archive) => {
                        let _ = writeln!(
                            out,
                            "\"$helm\" upgrade --install {} {} \\",
                            sh_quote(&c.name),
                            here(&archive)
                        );
                    }
                    ChartLocation::Remote { chart, repo } => {
                        let _ = writeln!(
                            out,
                            "\"$helm\" upgrade --install {} {} \\",
                            sh_quote(&c.name),
                            sh_quote(&chart)
                        );
                        if let Some(repo) = repo {
                            let _ = writeln!(out, "  --repo {} \\", sh_quote(&repo));
                        }
                        let _ = writeln!(out, "  --version {} \\", sh_quote(&c.version));
                    }
                };
                let _ = writeln!(out, "  --namespace {ns} --create-namespace \\");
                if let Some(values) = &c.values {
                    let _ = writeln!(out, "  --values {} \\", here(values));
                }
                let _ = writeln!(out, "  --wait --timeout \"$timeout\"");
            }
            ComponentType::Kustomize => {
                let _ = writeln!(out, "ensure_namespace {ns}");
                if let Some(k) = &c.kustomization {
                    let _ = writeln!(
                        out,
                        "kubectl apply --server-side --field-manager=aiconform -k {}",
                        here(k)
                    );
                }
            }
            ComponentType::Manifest => {
                let _ = writeln!(out, "ensure_namespace {ns}");
            }
        }
        for (m, crds) in c.manifests.iter().zip(&p.manifest_crds) {
            let _ = writeln!(
                out,
                "kubectl apply --server-side --field-manager=aiconform --namespace {ns} -f {}",
                here(m)
            );
            for crd in crds {
                let _ = writeln!(
                    out,
                    "kubectl wait --for=condition=Established --timeout \"$timeout\" {}",
                    sh_quote(&format!("crd/{crd}"))
                );
            }
        }
        let waited: Vec<&String> = p.manifest_crds.iter().flatten().collect();
        for h in &c.health_checks {
            match h.kind.as_str() {
                "CustomResourceDefinition" if waited.contains(&&h.name) => {}
                "CustomResourceDefinition" => {
                    let _ = writeln!(
                        out,
                        "kubectl wait --for=condition=Established --timeout \"$timeout\" {}",
                        sh_quote(&format!("crd/{}", h.name))
                    );
                }
                kind => {
                    let ns = h.namespace.as_deref().unwrap_or(&c.namespace);
                    let _ = writeln!(
                        out,
                        "kubectl rollout status --namespace {} --timeout \"$timeout\" {}",
                        sh_quote(ns),
                        sh_quote(&format!("{}/{}", kind.to_ascii_lowercase(), h.name))
                    );
                }
            }
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "echo {}",
        sh_quote(&format!(
            "deploy.sh: all {total} components of recipe {} deployed",
            ctx.recipe_name
        ))
    );
    let mut full = String::new();
    header(
        &mut full,
        ctx,
        &format!("Deploy, in deployment order, the {total} components of"),
        "",
        &tools(planned),
        &out,
    );
    full.push_str(&out);
    full
}

pub fn undeploy_sh(ctx: &ScriptContext<'_>, planned: &[Planned]) -> String {
    let mut out = String::new();
    let total = planned.len();
    for p in planned.iter().rev() {
        let c = &p.bc;
        let ns = sh_quote(&c.namespace);
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "echo {}",
            sh_quote(&format!("==> [{}/{total}] removing {}", p.index, c.name))
        );
        for m in c.manifests.iter().rev() {
            let _ = writeln!(
                out,
                "kubectl delete --ignore-not-found --namespace {ns} -f {}",
                here(m)
            );
        }
        match c.component_type {
            ComponentType::Helm => {
                let _ = writeln!(
                    out,
                    "if \"$helm\" status {} --namespace {ns} >/dev/null 2>&1; then",
                    sh_quote(&c.name)
                );
                let _ = writeln!(
                    out,
                    "  \"$helm\" uninstall {} --namespace {ns} --wait --timeout \"$timeout\"",
                    sh_quote(&c.name)
                );
                let _ = writeln!(out, "fi");
            }
            ComponentType::Kustomize => {
                if let Some(k) = &c.kustomization {
                    let _ = writeln!(out, "kubectl delete --ignore-not-found -k {}", here(k));
                }
            }
            ComponentType::Manifest => {}
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "echo {}",
        sh_quote(&format!(
            "undeploy.sh: all {total} components of recipe {} removed",
            ctx.recipe_name
        ))
    );
    let mut full = String::new();
    header(
        &mut full,
        ctx,
        &format!("Undeploy, in reverse deployment order, the {total} components of"),
        "# Namespaces are left in place (other workloads may use them), and so are CRDs that\n\
         # Helm installed from a chart's crds/ folder; delete them yourself when unused.\n",
        &tools(planned),
        &out,
    );
    full.push_str(&out);
    full
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(sh_quote("v1.2.3"), "v1.2.3");
        assert_eq!(sh_quote("oci://ghcr.io/x"), "oci://ghcr.io/x");
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(sh_quote("$(rm -rf /)"), "'$(rm -rf /)'");
        assert_eq!(sh_quote(""), "''");
    }
}
