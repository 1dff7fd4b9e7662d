use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use aiconform::recipe::aliases::ComponentAliases;
use aiconform::recipe::criteria::{CriteriaSpec, Dimension, NodesSpec};
use aiconform::recipe::model::Recipe;
use aiconform::recipe::source::RecipeFiles;
use aiconform::recipe::{
    Adjustments, Catalog, Criteria, compose_with, load_recipe_file, overrides,
};

/// Criteria and recipe sources shared by `recipe`, `query` and `bundle`.
#[derive(Debug, Args, Clone, Default)]
pub struct CriteriaArgs {
    /// Cloud or cluster service: eks, gke, aks, oke, kind, any (self-managed, self and
    /// vanilla mean any)
    #[arg(long, value_name = "SERVICE")]
    pub service: Option<String>,
    /// Accelerator: h100, gb200, b200, a100, l40, rtx-pro-6000, any
    #[arg(long, visible_alias = "gpu", value_name = "GPU")]
    pub accelerator: Option<String>,
    /// Node OS: ubuntu, rhel, cos, amazonlinux, any (al2 and al2023 mean amazonlinux)
    #[arg(long, value_name = "OS")]
    pub os: Option<String>,
    /// Workload intent: training, inference, any
    #[arg(long, value_name = "INTENT")]
    pub intent: Option<String>,
    /// ML platform: kubeflow, dynamo, any
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Number of nodes in the cluster; selects overlays whose `nodes` requirement it meets
    /// (e.g. `nodes: ">= 8"`); 0 means any
    #[arg(long, value_name = "N")]
    pub nodes: Option<u32>,
    /// YAML file with the criteria (keys service, accelerator, os, intent, platform, nodes,
    /// at top level or under `criteria:`); flags given on the command line override it
    #[arg(long, value_name = "FILE")]
    pub criteria: Option<PathBuf>,
    /// Directory of extra overlays layered over the built-in ones (repeatable; later wins)
    #[arg(long = "data", value_name = "DIR")]
    pub data: Vec<PathBuf>,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum CriteriaFile {
    Nested { criteria: CriteriaSpec },
    Flat(CriteriaSpec),
}

/// `--set COMPONENT:dotted.path=VALUE`, shared by `recipe`, `query` and `bundle`.
#[derive(Debug, Args, Clone, Default)]
pub struct SetArgs {
    /// Override a component value after all overlays, COMPONENT:dotted.path=VALUE
    /// (repeatable; the last one for a path wins). COMPONENT is a name or an alias such as
    /// gpuoperator or dradriver; VALUE is typed: true/false, integers and decimals are
    /// numbers, anything else (or anything in quotes) a string. COMPONENT:enabled=false
    /// removes a component, COMPONENT:enabled=true restores one an overlay removed
    #[arg(long = "set", value_name = "COMPONENT:PATH=VALUE")]
    pub set: Vec<String>,
}

impl CriteriaArgs {
    pub fn to_criteria(&self) -> Result<Criteria> {
        self.to_criteria_over(Criteria::new())
    }

    /// `base` (e.g. criteria derived from a snapshot) with the criteria file and then the
    /// flags laid over it.
    pub fn to_criteria_over(&self, base: Criteria) -> Result<Criteria> {
        let mut criteria = base;
        if let Some(path) = &self.criteria {
            let origin = path.display().to_string();
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read criteria file {origin}"))?;
            let spec = match aiconform::yaml::from_slice::<CriteriaFile>(&bytes, &origin)? {
                CriteriaFile::Nested { criteria } | CriteriaFile::Flat(criteria) => criteria,
            };
            for d in Dimension::ALL {
                if let Some(v) = spec.get(d) {
                    criteria
                        .set_alias(d, v)
                        .with_context(|| format!("in criteria file {origin}"))?;
                }
            }
            match &spec.nodes {
                None => {}
                Some(NodesSpec::Count(n)) => criteria.set_node_count(*n),
                Some(NodesSpec::Requirement(text)) => match text.trim().parse::<u32>() {
                    Ok(n) => criteria.set_node_count(n),
                    Err(_) => anyhow::bail!(
                        "in criteria file {origin}: nodes `{text}` must be a whole number (the cluster's node count)"
                    ),
                },
            }
        }
        for (dimension, value) in [
            (Dimension::Service, &self.service),
            (Dimension::Accelerator, &self.accelerator),
            (Dimension::Os, &self.os),
            (Dimension::Intent, &self.intent),
            (Dimension::Platform, &self.platform),
        ] {
            if let Some(v) = value {
                criteria
                    .set_alias(dimension, v)
                    .with_context(|| format!("invalid --{dimension}"))?;
            }
        }
        if let Some(n) = self.nodes {
            criteria.set_node_count(n);
        }
        Ok(criteria)
    }

    /// True when any criteria flag (or --criteria / --data) was given.
    pub fn is_given(&self) -> bool {
        self.service.is_some()
            || self.accelerator.is_some()
            || self.os.is_some()
            || self.intent.is_some()
            || self.platform.is_some()
            || self.nodes.is_some()
            || self.criteria.is_some()
            || !self.data.is_empty()
    }

    /// The recipe of `--recipe FILE`, or the one composed from the criteria flags; both at
    /// once is an error.
    pub fn recipe(&self, recipe_file: Option<&std::path::Path>) -> Result<Recipe> {
        self.recipe_with(recipe_file, &SetArgs::default())
    }

    /// [`Self::recipe`] with `--set` overrides applied (to a recipe file as loaded, or
    /// while composing).
    pub fn recipe_with(
        &self,
        recipe_file: Option<&std::path::Path>,
        sets: &SetArgs,
    ) -> Result<Recipe> {
        match recipe_file {
            Some(path) => {
                if self.is_given() {
                    anyhow::bail!(
                        "give either --recipe FILE or criteria flags (--service, --accelerator, ...), not both"
                    );
                }
                let mut recipe = load_recipe_file(path)?;
                if !sets.set.is_empty() {
                    let aliases = ComponentAliases::load(&RecipeFiles::builtin())?;
                    overrides::apply_texts(&mut recipe, &sets.set, &aliases)
                        .with_context(|| format!("applying --set to {}", path.display()))?;
                    report_overrides(&recipe);
                }
                Ok(recipe)
            }
            None => {
                let adj = Adjustments {
                    sets: overrides::parse_all(&sets.set)?,
                    ..Default::default()
                };
                let recipe = compose_with(&self.catalog()?, &self.to_criteria()?, &adj)?;
                report_overrides(&recipe);
                Ok(recipe)
            }
        }
    }

    pub fn catalog(&self) -> Result<Catalog> {
        let files = RecipeFiles::with_data_dirs(&self.data)?;
        Ok(Catalog::load(files)?)
    }
}

/// Tell the user on stderr what `--set` removed and what now deploys without it.
pub fn report_overrides(recipe: &Recipe) {
    for o in &recipe.metadata.overrides {
        if o.path == aiconform::recipe::set::ENABLED && o.value == serde_json::Value::Bool(false) {
            if o.dependents.is_empty() {
                eprintln!("note: --set removed component {}", o.component);
            } else {
                eprintln!(
                    "warning: --set removed component {}; {} depended on it and will deploy without it",
                    o.component,
                    o.dependents.join(", ")
                );
            }
        }
    }
}
