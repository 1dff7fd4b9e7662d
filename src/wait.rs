//! The one wait on a cluster object: watch it until a check passes or a deadline does, then
//! say what the object looks like. Deploy waits on components with it, the cases on what
//! they created.

use std::fmt::Debug;

use kube::Resource;
use kube::api::Api;
use kube::runtime::wait::await_condition;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

/// A wait that could not watch or read its object.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error("cannot watch {what}: {source}")]
    Watch {
        what: String,
        #[source]
        source: kube::runtime::wait::Error,
    },
    #[error("cannot read {what}: {source}")]
    Read {
        what: String,
        #[source]
        source: kube::Error,
    },
}

/// Wait (watching) until `eval` says the object is good or the deadline passes.
/// `Ok(Ok(obj))` when good; `Ok(Err(reason))` at the deadline: the object's last problem,
/// or that it does not exist.
pub async fn wait_object<K>(
    api: Api<K>,
    what: &str,
    name: &str,
    deadline: Instant,
    eval: fn(&K) -> Result<String, String>,
) -> Result<Result<(K, String), String>, WaitError>
where
    K: Clone + Debug + Send + DeserializeOwned + Resource + 'static,
{
    let cond = move |o: Option<&K>| o.is_some_and(|k| eval(k).is_ok());
    let waited = tokio::time::timeout_at(deadline, await_condition(api.clone(), name, cond)).await;
    if let Ok(r) = waited
        && let Some(obj) = r.map_err(|source| WaitError::Watch {
            what: what.to_string(),
            source,
        })?
    {
        let msg = eval(&obj).unwrap_or_default();
        return Ok(Ok((obj, msg)));
    }
    let last = api.get_opt(name).await.map_err(|source| WaitError::Read {
        what: what.to_string(),
        source,
    })?;
    Ok(match last {
        None => Err(format!("{what} not found")),
        Some(obj) => match eval(&obj) {
            Ok(msg) => Ok((obj, msg)),
            Err(e) => Err(format!("{what}: {e}")),
        },
    })
}
