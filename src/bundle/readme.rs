//! README texts: one for the bundle, one per component.

use std::fmt::Write as _;

use super::model::ChartLocation;
use super::planned::{CHECKSUMS_FILE, Planned, VALUES_FILE};
use super::scripts::sh_quote;
use super::{BundleOptions, Deployer};
use crate::recipe::model::{ComponentType, Recipe};

fn kind_label(t: ComponentType) -> &'static str {
    match t {
        ComponentType::Helm => "Helm chart",
        ComponentType::Kustomize => "Kustomize",
        ComponentType::Manifest => "Manifests",
    }
}

pub(crate) fn top(
    recipe: &Recipe,
    digest: &str,
    opts: &BundleOptions,
    planned: &[Planned],
) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# Bundle for recipe `{}`\n", recipe.metadata.name);
    let criteria: Vec<String> = recipe
        .criteria
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let _ = writeln!(
        o,
        "Rendered by aiconform {} from recipe `{}` ({digest}){}.\n",
        env!("CARGO_PKG_VERSION"),
        recipe.metadata.name,
        if criteria.is_empty() {
            String::new()
        } else {
            format!(", criteria {}", criteria.join(" "))
        }
    );
    let _ = writeln!(o, "## Components, in deployment order\n");
    let _ = writeln!(o, "| # | Component | Type | Version | Namespace | Folder |");
    let _ = writeln!(o, "|---|-----------|------|---------|-----------|--------|");
    for p in planned {
        let c = &p.bc;
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | `{}/` |",
            p.index,
            c.name,
            kind_label(c.component_type),
            c.version,
            c.namespace,
            c.folder
        );
    }
    let _ = writeln!(o, "\n## Deploy\n");
    match opts.deployer {
        Deployer::Helm => {
            let _ = writeln!(
                o,
                "With `helm` and `kubectl` on PATH and a kubeconfig for the target cluster:\n\n\
                 ```sh\n./deploy.sh            # helm upgrade --install / kubectl apply, in order, waiting for each\n\
                 ./undeploy.sh          # removes the components in reverse order\n```\n\n\
                 `TIMEOUT=20m ./deploy.sh` raises the per-component wait (default 10m).\n\
                 Or let aiconform apply it and wait for every health check:\n\n\
                 ```sh\naiconform deploy --bundle .\n```"
            );
        }
        Deployer::ArgoCd => {
            let _ = writeln!(
                o,
                "Argo CD app-of-apps: `argocd/app-of-apps.yaml` points at `argocd/applications/`, \
                 one Application per component with `argocd.argoproj.io/sync-wave` set to {}, \
                 so Argo CD waits for each wave to be healthy before the next.\n\n\
                 1. Push this directory to the Git repository `{}`{}.\n\
                 2. `kubectl apply -n argocd -f argocd/app-of-apps.yaml`\n\n\
                 Helm components take their values from `<folder>/values.yaml` in that repository. \
                 Charts from OCI registries need an Argo CD repository entry with `enableOCI: true`.",
                wave_text(opts),
                super::argocd::repo_url(opts),
                repo_note(opts)
            );
        }
        Deployer::ArgoCdHelm => {
            let _ = writeln!(
                o,
                "Argo CD app-of-apps as a Helm chart: `argocd-helm/` is a chart (Argo CD 2.13 or \
                 later) whose templates are one Application per component with \
                 `argocd.argoproj.io/sync-wave` set to {}; `repoURL` and `targetRevision` are \
                 chart values.\n\n\
                 1. Push this directory to the Git repository `{}`{}.\n\
                 2. `kubectl apply -n argocd -f argocd-helm/app-of-apps.yaml`, or render the \
                 Applications yourself: `helm template argocd-helm --set repoURL=URL | kubectl apply -n argocd -f -`\n\n\
                 Helm components take their values from `<folder>/values.yaml` in that repository.",
                wave_text(opts),
                super::argocd::repo_url(opts),
                repo_note(opts)
            );
        }
        Deployer::Flux => {
            let _ = writeln!(
                o,
                "Flux: `kustomization.yaml` lists `flux/*.yaml`, a HelmRepository (OCIRepository \
                 for `oci://` charts) and HelmRelease per chart, and a Kustomization per manifest \
                 folder, with `dependsOn` {}. Chart values are ConfigMaps generated from \
                 `<folder>/values.yaml`. Needs Flux 2.6 or later (OCIRepository `source.toolkit.fluxcd.io/v1`).\n\n\
                 1. Push this directory to the Git repository `{}`{} (branch `main`).\n\
                 2. `kubectl apply -f flux/source.yaml`\n\
                 3. `flux create kustomization aiconform-bundle --source=GitRepository/aiconform-bundle --path=./ --prune=true`",
                if opts.serial {
                    "on the component before it (`--serial`)"
                } else {
                    "from the recipe's dependencies, so independent components reconcile in parallel"
                },
                super::argocd::repo_url(opts),
                repo_note(opts)
            );
        }
        Deployer::Helmfile => {
            let _ = writeln!(
                o,
                "helmfile: `helmfile.yaml` has one release per chart (values from \
                 `<folder>/values.yaml`) and per manifest folder (installed as a chart by \
                 helmfile), with `needs` {}.\n\n\
                 ```sh\nhelmfile apply      # install or upgrade every release\n\
                 helmfile destroy    # remove them, dependents first\n```",
                if opts.serial {
                    "on the release before it (`--serial`)"
                } else {
                    "from the recipe's dependencies, so independent releases install in parallel"
                }
            );
        }
    }
    let vendored: std::collections::BTreeSet<&str> = planned
        .iter()
        .filter_map(|p| p.bc.chart_archive.as_deref())
        .collect();
    if !vendored.is_empty() {
        let _ = writeln!(
            o,
            "\n## Vendored charts\n\n\
             The charts are in `charts/` ({}); `{}` records the source, version and SHA-256 of \
             each. They are installed from there, without reaching a chart repository or registry.",
            vendored
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", "),
            super::vendor::PROVENANCE_FILE
        );
    }
    let _ = writeln!(o, "\n## Verify\n");
    let _ = writeln!(
        o,
        "```sh\naiconform bundle verify .   # changed, missing or extra files against bundle.yaml\n\
         sha256sum -c {CHECKSUMS_FILE}   # every file but bundle.yaml\n```\n\n\
         `bundle.yaml` records the recipe digest, the tool version, the options and the SHA-256 \
         of every file; `recipe.yaml` is the recipe the bundle was rendered from."
    );
    let _ = writeln!(o, "\n## Node placement\n");
    let placement = placement_summary(opts);
    if placement.is_empty() {
        let _ = writeln!(
            o,
            "No node selectors or tolerations were given; chart values are the recipe's."
        );
    } else {
        for line in placement {
            let _ = writeln!(o, "- {line}");
        }
        let _ = writeln!(
            o,
            "\nEach component README lists the values paths they were injected at."
        );
    }
    o
}

fn wave_text(opts: &BundleOptions) -> &'static str {
    if opts.serial {
        "its position in the deployment order (`--serial`, from 0)"
    } else {
        "its depth in the dependency graph (0 without dependencies; independent components share \
         a wave)"
    }
}

fn repo_note(opts: &BundleOptions) -> &'static str {
    if opts.argocd_repo_url.is_none() {
        " (a placeholder: re-render with `--argocd-repo-url URL` to name your repository)"
    } else {
        ""
    }
}

fn placement_summary(opts: &BundleOptions) -> Vec<String> {
    let sel = |m: &std::collections::BTreeMap<String, String>| {
        m.iter()
            .map(|(k, v)| format!("`{k}={v}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = Vec::new();
    if !opts.system_node_selector.is_empty() {
        out.push(format!(
            "system node selector: {}",
            sel(&opts.system_node_selector)
        ));
    }
    if !opts.accelerated_node_selector.is_empty() {
        out.push(format!(
            "accelerated node selector: {}",
            sel(&opts.accelerated_node_selector)
        ));
    }
    if !opts.accelerated_tolerations.is_empty() {
        out.push(format!(
            "accelerated node tolerations: {}",
            opts.accelerated_tolerations
                .iter()
                .map(|t| format!("`{t}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out
}

pub(crate) fn component(
    p: &Planned,
    total: usize,
    recipe_name: &str,
    opts: &BundleOptions,
) -> String {
    let c = &p.bc;
    let mut o = String::new();
    let _ = writeln!(o, "# {}\n", c.name);
    let what = match c.component_type {
        ComponentType::Helm => format!(
            "Helm chart `{}` version `{}` from `{}`{}",
            c.chart.as_deref().unwrap_or(&c.name),
            c.version,
            c.source.as_deref().unwrap_or("(no repository)"),
            c.chart_archive
                .as_deref()
                .map(|a| format!(", vendored as `../{a}`"))
                .unwrap_or_default()
        ),
        ComponentType::Kustomize => format!(
            "Kustomization `{}` version `{}`",
            c.source.as_deref().unwrap_or(""),
            c.version
        ),
        ComponentType::Manifest => format!("Kubernetes manifests, version `{}`", c.version),
    };
    let _ = writeln!(
        o,
        "{what}, deployed into namespace `{}`. Component {} of {total} of recipe `{recipe_name}`.",
        c.namespace, p.index
    );
    if !c.dependency_refs.is_empty() {
        let _ = writeln!(o, "\nDepends on: {}.", c.dependency_refs.join(", "));
    }
    if !p.overlays.is_empty() {
        let _ = writeln!(o, "\nConfigured by overlays: {}.", p.overlays.join(", "));
    }

    let _ = writeln!(o, "\n## Files\n");
    if c.values.is_some() {
        let _ = writeln!(
            o,
            "- `{VALUES_FILE}`: chart values from the recipe{}",
            if p.injections.is_empty() {
                ""
            } else {
                ", with node placement injected (below)"
            }
        );
    }
    if c.kustomization.is_some() {
        let _ = writeln!(
            o,
            "- `kustomize/kustomization.yaml`: the kustomization, in namespace `{}`",
            c.namespace
        );
    }
    for m in &c.manifests {
        let rel = m.strip_prefix(&format!("{}/", c.folder)).unwrap_or(m);
        let _ = writeln!(
            o,
            "- `{rel}`: applied with server-side apply{}",
            if c.component_type == ComponentType::Helm {
                " after the chart"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(
        o,
        "- `{CHECKSUMS_FILE}`: SHA-256 of the files above; `sha256sum -c {CHECKSUMS_FILE}` in this folder checks them"
    );
    if p.ignored_values {
        let _ = writeln!(
            o,
            "\nThe recipe sets values for this component, but only Helm components take values; they are not used."
        );
    }
    if !p.injections.is_empty() {
        let _ = writeln!(o, "\n## Node placement\n");
        for i in &p.injections {
            let _ = writeln!(o, "- `{}`: {}", i.path, i.what);
        }
    } else if c.component_type == ComponentType::Helm && !placement_summary(opts).is_empty() {
        let _ = writeln!(
            o,
            "\n## Node placement\n\nThe chart has no values path for the node placement options given; values are the recipe's."
        );
    }

    let ns = sh_quote(&c.namespace);
    let _ = writeln!(o, "\n## Install\n");
    let _ = writeln!(
        o,
        "From this folder, with a kubeconfig for the target cluster:\n"
    );
    let _ = writeln!(o, "```sh");
    match c.component_type {
        ComponentType::Helm => {
            let chart = match c.chart_location() {
                ChartLocation::Archive(archive) => format!("../{archive}"),
                ChartLocation::Remote { chart, repo } => format!(
                    "{}{} --version {}",
                    sh_quote(&chart),
                    repo.map(|r| format!(" --repo {}", sh_quote(&r)))
                        .unwrap_or_default(),
                    sh_quote(&c.version)
                ),
            };
            let _ = writeln!(
                o,
                "helm upgrade --install {} {chart} \\\n  --namespace {ns} --create-namespace --values {VALUES_FILE} --wait",
                sh_quote(&c.name),
            );
        }
        ComponentType::Kustomize => {
            let _ = writeln!(
                o,
                "kubectl create namespace {ns} --dry-run=client -o yaml | kubectl apply --server-side -f -"
            );
            let _ = writeln!(
                o,
                "kubectl apply --server-side --field-manager=aiconform -k kustomize/"
            );
        }
        ComponentType::Manifest => {
            let _ = writeln!(
                o,
                "kubectl create namespace {ns} --dry-run=client -o yaml | kubectl apply --server-side -f -"
            );
        }
    }
    for m in &c.manifests {
        let rel = m.strip_prefix(&format!("{}/", c.folder)).unwrap_or(m);
        let _ = writeln!(
            o,
            "kubectl apply --server-side --field-manager=aiconform --namespace {ns} -f {rel}"
        );
    }
    let _ = writeln!(o, "```");
    if !c.health_checks.is_empty() {
        let _ = writeln!(o, "\n## Health\n\nThe component is healthy when:\n");
        for h in &c.health_checks {
            let cond = match h.kind.as_str() {
                "CustomResourceDefinition" => "is Established",
                "DaemonSet" => "has a ready pod on every node it schedules to",
                _ => "has all its replicas ready",
            };
            match &h.namespace {
                Some(hns) => {
                    let _ = writeln!(o, "- {} `{hns}/{}` {cond}", h.kind, h.name);
                }
                None => {
                    let _ = writeln!(o, "- {} `{}` {cond}", h.kind, h.name);
                }
            }
        }
    }
    let _ = writeln!(o, "\n## Uninstall\n\n```sh");
    for m in c.manifests.iter().rev() {
        let rel = m.strip_prefix(&format!("{}/", c.folder)).unwrap_or(m);
        let _ = writeln!(
            o,
            "kubectl delete --ignore-not-found --namespace {ns} -f {rel}"
        );
    }
    match c.component_type {
        ComponentType::Helm => {
            let _ = writeln!(
                o,
                "helm uninstall {} --namespace {ns} --wait",
                sh_quote(&c.name)
            );
        }
        ComponentType::Kustomize => {
            let _ = writeln!(o, "kubectl delete --ignore-not-found -k kustomize/");
        }
        ComponentType::Manifest => {}
    }
    let _ = writeln!(o, "```");
    o
}
