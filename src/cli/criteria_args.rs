use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use aiconform::recipe::criteria::{CriteriaSpec, Dimension};
use aiconform::recipe::source::RecipeFiles;
use aiconform::recipe::{Catalog, Criteria, Recipe, compose, load_recipe_file};

/// Criteria and recipe sources shared by `recipe`, `query` and `bundle`.
#[derive(Debug, Args, Clone, Default)]
pub struct CriteriaArgs {
    /// Cloud or cluster service: eks, gke, aks, oke, kind, any
    #[arg(long, value_name = "SERVICE")]
    pub service: Option<String>,
    /// Accelerator: h100, gb200, b200, a100, l40, rtx-pro-6000, any
    #[arg(long, value_name = "GPU")]
    pub accelerator: Option<String>,
    /// Node OS: ubuntu, rhel, cos, amazonlinux, any
    #[arg(long, value_name = "OS")]
    pub os: Option<String>,
    /// Workload intent: training, inference, any
    #[arg(long, value_name = "INTENT")]
    pub intent: Option<String>,
    /// ML platform: kubeflow, dynamo, any
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// YAML file with the criteria (keys service, accelerator, os, intent, platform, at top
    /// level or under `criteria:`); flags given on the command line override it
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

impl CriteriaArgs {
    pub fn to_criteria(&self) -> Result<Criteria> {
        let mut criteria = Criteria::new();
        if let Some(path) = &self.criteria {
            let origin = path.display().to_string();
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read criteria file {origin}"))?;
            let spec = match aiconform::yaml::from_slice::<CriteriaFile>(&bytes, &origin)? {
                CriteriaFile::Nested { criteria } | CriteriaFile::Flat(criteria) => criteria,
            };
            criteria = spec
                .to_criteria()
                .with_context(|| format!("in criteria file {origin}"))?;
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
                    .set(dimension, v)
                    .with_context(|| format!("invalid --{dimension}"))?;
            }
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
            || self.criteria.is_some()
            || !self.data.is_empty()
    }

    /// The recipe of `--recipe FILE`, or the one composed from the criteria flags; both at
    /// once is an error.
    pub fn recipe(&self, recipe_file: Option<&std::path::Path>) -> Result<Recipe> {
        match recipe_file {
            Some(path) => {
                if self.is_given() {
                    anyhow::bail!(
                        "give either --recipe FILE or criteria flags (--service, --accelerator, ...), not both"
                    );
                }
                Ok(load_recipe_file(path)?)
            }
            None => Ok(compose(&self.catalog()?, &self.to_criteria()?)?),
        }
    }

    pub fn catalog(&self) -> Result<Catalog> {
        let files = RecipeFiles::with_data_dirs(&self.data)?;
        Ok(Catalog::load(files)?)
    }
}
