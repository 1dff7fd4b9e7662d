use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use aiconform::recipe::aliases::ComponentAliases;
use aiconform::recipe::criteria::{CriteriaSpec, Dimension, NodesSpec};
use aiconform::recipe::model::Recipe;
use aiconform::recipe::set::SetExpr;
use aiconform::recipe::source::RecipeFiles;
use aiconform::recipe::{
    Adjustments, Catalog, Criteria, RecipeError, compose_with, load_recipe_file, overrides,
};

/// Criteria and recipe sources shared by `recipe`, `query` and `bundle`.
#[derive(Debug, Args, Clone, Default)]
pub struct CriteriaArgs {
    /// Cloud or cluster service: eks, gke, aks, oke, ocp, kind, lke, bcm, metal3, rke2,
    /// generic, k0s, any (self-managed, self and vanilla mean generic)
    #[arg(long, value_name = "SERVICE")]
    pub service: Option<String>,
    /// Accelerator: h100, h200, gb200, gb300, b200, a100, l40, l40s, rtx-pro-6000, vr200, any
    #[arg(long, visible_alias = "gpu", value_name = "GPU")]
    pub accelerator: Option<String>,
    /// Node OS: ubuntu, rhel, cos, amazonlinux, ol, talos, any (al2 and al2023 mean
    /// amazonlinux)
    #[arg(long, value_name = "OS")]
    pub os: Option<String>,
    /// Workload intent: training, inference, any
    #[arg(long, value_name = "INTENT")]
    pub intent: Option<String>,
    /// ML platform: dynamo, kubeflow, nim, runai, slurm, any
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

/// A criteria file: the keys at top level, or under `criteria:` (the shape of a recipe's
/// criteria). One struct rather than an untagged enum of the two shapes, so that a misspelt
/// key is reported by name with its line instead of "did not match any variant".
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CriteriaFile {
    #[serde(default)]
    criteria: Option<CriteriaSpec>,
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    accelerator: Option<String>,
    #[serde(default)]
    os: Option<String>,
    #[serde(default)]
    intent: Option<String>,
    #[serde(default)]
    platform: Option<String>,
    #[serde(default)]
    nodes: Option<NodesSpec>,
}

impl CriteriaFile {
    /// The criteria, from whichever shape the file has; both at once is ambiguous.
    fn into_spec(self, origin: &str) -> Result<CriteriaSpec> {
        let flat = CriteriaSpec {
            service: self.service,
            accelerator: self.accelerator,
            os: self.os,
            intent: self.intent,
            platform: self.platform,
            nodes: self.nodes,
        };
        match self.criteria {
            None => Ok(flat),
            Some(nested) if flat == CriteriaSpec::default() => Ok(nested),
            Some(_) => anyhow::bail!(
                "criteria file {origin}: give the criteria either at top level or under `criteria:`, not both"
            ),
        }
    }
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
    /// Override with a JSON value, COMPONENT:dotted.path=JSON (repeatable; applied after
    /// --set): an object deep-merges into the map at the path, null deletes the key (also
    /// inside an object), lists and scalars replace
    #[arg(long = "set-json", value_name = "COMPONENT:PATH=JSON")]
    pub set_json: Vec<String>,
    /// Override with the content of a YAML or JSON file, COMPONENT:dotted.path=FILE
    /// (repeatable; applied after --set-json), merged as --set-json merges
    #[arg(long = "set-file", value_name = "COMPONENT:PATH=FILE")]
    pub set_file: Vec<String>,
}

impl SetArgs {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.set_json.is_empty() && self.set_file.is_empty()
    }

    /// Every override parsed, in the order they apply: --set, --set-json, --set-file (each
    /// file read here).
    pub fn exprs(&self) -> Result<Vec<SetExpr>> {
        let mut exprs = overrides::parse_all(&self.set)?;
        exprs.extend(overrides::parse_all_json(&self.set_json)?);
        for text in &self.set_file {
            let (_, _, file) = SetExpr::file_of(text).map_err(RecipeError::from)?;
            let content = std::fs::read_to_string(&file)
                .with_context(|| format!("--set-file `{text}`: cannot read {file}"))?;
            exprs.push(SetExpr::from_file(text, &content).map_err(RecipeError::from)?);
        }
        Ok(exprs)
    }
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
            let spec =
                aiconform::yaml::from_slice::<CriteriaFile>(&bytes, &origin)?.into_spec(&origin)?;
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
                if !sets.is_empty() {
                    let aliases = ComponentAliases::load(&RecipeFiles::builtin())?;
                    overrides::apply_exprs(&mut recipe, &sets.exprs()?, &aliases)
                        .with_context(|| format!("applying --set to {}", path.display()))?;
                    report_overrides(&recipe);
                }
                Ok(recipe)
            }
            None => {
                let adj = Adjustments {
                    sets: sets.exprs()?,
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
