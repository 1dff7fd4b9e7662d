//! Cases the runner implements itself: readiness (constraints against the snapshot). The
//! suite registry (`crate::suites::resolver`) is consulted first, so it can replace these.

use futures::FutureExt;

use super::case::{CaseContext, CaseFn, Outcome};
use crate::readiness;
use crate::snapshot::measure;

/// Built-in implementations by name.
pub fn lookup(name: &str) -> Option<CaseFn> {
    match name {
        "readiness-constraint" => Some(readiness_constraint),
        _ => None,
    }
}

/// `params.constraint` names a recipe constraint; it must hold on the snapshot.
fn readiness_constraint(
    ctx: CaseContext,
) -> futures::future::BoxFuture<'static, anyhow::Result<Outcome>> {
    async move { Ok(check_constraint(&ctx)) }.boxed()
}

fn check_constraint(ctx: &CaseContext) -> Outcome {
    let name = match ctx.param::<String>("constraint") {
        Ok(name) => name,
        Err(e) => return Outcome::failed(e.to_string()),
    };
    let Some(name) = name else {
        return Outcome::failed(
            "suite error: readiness-constraint needs params.constraint (use `expand: perConstraint`)",
        );
    };
    let Some(constraint) = ctx.recipe.constraints.iter().find(|c| c.name == name) else {
        return Outcome::failed(format!(
            "recipe `{}` has no constraint `{name}`",
            ctx.recipe.metadata.name
        ));
    };
    let Some(snapshot) = &ctx.snapshot else {
        return Outcome::skipped(
            "no snapshot: pass --snapshot FILE|cm://NS/NAME or a cluster target to take one",
        );
    };
    let measurements = measure::flatten(snapshot);
    let r = readiness::check(constraint, &measurements);
    let actual = readiness::actual_cell(&r.actual);
    match r.status {
        readiness::Status::Pass => {
            Outcome::passed(format!("{} {} (actual {actual})", r.constraint, r.expected))
        }
        _ => Outcome::failed(format!(
            "{} {}: {} (expected {}; set by overlay `{}`)",
            r.constraint,
            r.status.as_str(),
            r.detail.unwrap_or_else(|| format!("actual {actual}")),
            r.expected,
            r.source
        )),
    }
}
