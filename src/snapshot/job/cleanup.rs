//! Removing an agent run: the namespace deleted, the agent pods still running deleted, and a
//! watch until they are gone.

use super::*;

/// Delete the namespace and the agent pods still running in it, and wait until those are
/// gone; finished pods, reports and the rest go with the namespace.
pub async fn clean_up(client: &kube::Client, name: &str, timeout: Duration) -> Result<(), String> {
    let fix = format!("remove it with `kubectl delete namespace {name}`");
    // Deleting the namespace first stops new objects from appearing in it.
    match Api::<Namespace>::all(client.clone())
        .delete(name, &DeleteParams::background())
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => {
            return Err(format!(
                "cannot delete namespace {name}: {}; {fix}",
                crate::snapshot::kube_message(&e)
            ));
        }
    }
    let labels = format!("{}={}", AGENT_APP.0, AGENT_APP.1);
    let work = async {
        let pods: Api<Pod> = Api::namespaced(client.clone(), name);
        match pods
            .delete_collection(
                &DeleteParams::background(),
                &ListParams::default().labels(&labels).fields(NOT_FINISHED),
            )
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                return Err(format!(
                    "cannot delete the agent pods in namespace {name}: {}; {fix}",
                    crate::snapshot::kube_message(&e)
                ));
            }
        }
        // A metadata-only watch: the wait needs names, not the pods.
        until_none(
            Api::<PartialObjectMeta<Pod>>::namespaced(client.clone(), name),
            watcher::Config::default()
                .labels(&labels)
                .fields(NOT_FINISHED),
        )
        .await;
        Ok(())
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "agent pods in namespace {name} are still running after {}s; {fix}",
            timeout.as_secs()
        )),
    }
}

/// Wait until no object of `api` matches `config`'s selectors (errors are retried with
/// backoff; the caller bounds the wait).
pub(super) async fn until_none<K>(api: Api<K>, config: watcher::Config)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    use kube::runtime::watcher::Event as W;
    let stream = watcher(api, config).default_backoff();
    futures::pin_mut!(stream);
    // Names present as of the last complete list, updated by later events.
    let mut present = None::<std::collections::BTreeSet<String>>;
    let mut listing = std::collections::BTreeSet::new();
    while let Some(event) = stream.next().await {
        match event {
            Ok(W::Init) => listing.clear(),
            Ok(W::InitApply(o)) => {
                listing.insert(o.name_any());
            }
            Ok(W::InitDone) => present = Some(std::mem::take(&mut listing)),
            Ok(W::Apply(o)) => {
                if let Some(p) = &mut present {
                    p.insert(o.name_any());
                }
            }
            Ok(W::Delete(o)) => {
                if let Some(p) = &mut present {
                    p.remove(&o.name_any());
                }
            }
            Err(e) => tracing::debug!("cleanup watch error (retrying): {e}"),
        }
        if present.as_ref().is_some_and(|p| p.is_empty()) {
            return;
        }
    }
}
