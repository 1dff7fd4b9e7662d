//! `POST /v1/bundle`: adapter between the API and [`crate::bundle`]. Maps the JSON
//! `options` object onto [`BundleOptions`] with the same validation as the CLI flags.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::error::ApiError;
use crate::bundle::{BundleError, BundleOptions, Deployer, Toleration, parse_selectors};
use crate::recipe::model::Recipe;

/// Builds the OpenAPI schema of one option.
pub type OptionSchema = fn() -> Value;

/// `key=value`, key a qualified name `[prefix/]name`, value a label value.
const SELECTOR_ITEM: &str = "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?=([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$";
/// `key[=value][:Effect]`, key a qualified name `[prefix/]name`.
const TOLERATION: &str = "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?(=([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?)?(:(NoSchedule|PreferNoSchedule|NoExecute))?$";

fn selector_schema() -> Value {
    json!({
        "type": "array",
        "description": "Node labels as `key=value` (Kubernetes label syntax), each key once; the CLI's --*-node-selector syntax",
        "items": {"type": "string", "pattern": SELECTOR_ITEM},
        "uniqueItems": true,
    })
}

/// Option names accepted under `options`, each with its OpenAPI schema.
pub const OPTION_FIELDS: &[(&str, OptionSchema)] = &[
    ("systemNodeSelector", selector_schema),
    ("acceleratedNodeSelector", selector_schema),
    ("acceleratedTolerations", || {
        json!({
            "type": "array",
            "description": "Tolerations for per-GPU-node workloads, as `key=value:Effect`, `key:Effect` or `key`",
            "items": {"type": "string", "pattern": TOLERATION},
        })
    }),
    (
        "deployer",
        || json!({"type": "string", "enum": ["helm", "argocd", "argocd-helm", "flux", "helmfile"], "description": "Default helm"}),
    ),
    (
        "serial",
        || json!({"type": "boolean", "description": "One component at a time instead of parallel where independent. Default false"}),
    ),
    (
        "argocdRepoUrl",
        || json!({"type": "string", "nullable": true, "pattern": REPO_URL_PATTERN, "maxLength": 2048, "description": "Git repository the bundle is read from (argocd, argocd-helm and flux deployers)"}),
    ),
];

/// What the bundle engine accepts as a repository URL, checked for every deployer so a
/// request is valid or invalid regardless of which deployer it names.
const REPO_URL_PATTERN: &str = "^[!#-&(-,.-~][!#-&(-~]*$";

fn is_repo_url(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 2048
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'\'' && b != b'"')
}

fn field(name: &str) -> String {
    format!("options.{name}")
}

fn invalid(name: &str, message: String) -> ApiError {
    ApiError::bad_request("invalid_body", message).with_field(field(name))
}

/// Map the `options` object of a bundle request.
pub fn options_from_json(opts: &Map<String, Value>) -> Result<BundleOptions, ApiError> {
    let mut out = BundleOptions::default();
    for (key, value) in opts {
        match key.as_str() {
            "systemNodeSelector" => {
                out.system_node_selector = selector(key, value, "options.systemNodeSelector")?;
            }
            "acceleratedNodeSelector" => {
                out.accelerated_node_selector =
                    selector(key, value, "options.acceleratedNodeSelector")?;
            }
            "acceleratedTolerations" => {
                let Value::Array(items) = value else {
                    return Err(invalid(
                        key,
                        format!(
                            "`{}` must be an array of strings like nvidia.com/gpu=present:NoSchedule",
                            field(key)
                        ),
                    ));
                };
                out.accelerated_tolerations = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let f = format!("{}[{i}]", field(key));
                        let Value::String(s) = item else {
                            return Err(ApiError::bad_request(
                                "invalid_body",
                                format!(
                                    "`{f}` must be a string like nvidia.com/gpu=present:NoSchedule"
                                ),
                            )
                            .with_field(f));
                        };
                        s.parse::<Toleration>().map_err(|e| {
                            ApiError::bad_request("invalid_body", e.to_string()).with_field(f)
                        })
                    })
                    .collect::<Result<_, _>>()?;
            }
            "deployer" => {
                let Value::String(s) = value else {
                    return Err(invalid(
                        key,
                        "`options.deployer` must be one of `helm`, `argocd`, `argocd-helm`, `flux`, `helmfile`".into(),
                    ));
                };
                out.deployer = s
                    .parse::<Deployer>()
                    .map_err(|e| invalid(key, e.to_string()))?;
            }
            "serial" => {
                let Value::Bool(b) = value else {
                    return Err(invalid(
                        key,
                        "`options.serial` must be true or false".into(),
                    ));
                };
                out.serial = *b;
            }
            "argocdRepoUrl" => match value {
                Value::Null => out.argocd_repo_url = None,
                Value::String(s) if is_repo_url(s) => {
                    out.argocd_repo_url = Some(s.clone());
                }
                _ => {
                    return Err(invalid(
                        key,
                        "`options.argocdRepoUrl` must be a Git repository URL: printable ASCII without spaces or quotes, not starting with `-`, at most 2048 characters".into(),
                    ));
                }
            },
            other => {
                let names: Vec<&str> = OPTION_FIELDS.iter().map(|(n, _)| *n).collect();
                let shown: String = other.chars().take(64).collect();
                return Err(ApiError::bad_request(
                    "invalid_body",
                    format!(
                        "unknown option `{shown}`; options are: {}",
                        names.join(", ")
                    ),
                )
                .with_field(field(&shown)));
            }
        }
    }
    Ok(out)
}

fn selector(
    key: &str,
    value: &Value,
    flag: &'static str,
) -> Result<BTreeMap<String, String>, ApiError> {
    let Value::Array(items) = value else {
        return Err(invalid(
            key,
            format!(
                "`{flag}` must be an array of `key=value` strings, e.g. [\"nodeGroup=system\"]"
            ),
        ));
    };
    let mut args = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::String(s) = item else {
            return Err(ApiError::bad_request(
                "invalid_body",
                format!("`{flag}[{i}]` must be a `key=value` string"),
            )
            .with_field(format!("{flag}[{i}]")));
        };
        args.push(s.clone());
    }
    // The CLI's parser: same syntax, same messages, a repeated key is an error.
    parse_selectors(flag, &args).map_err(|e| invalid(key, e.to_string()))
}

/// The request field of a bundle option the engine names by its CLI flag.
fn option_field(flag: &str) -> String {
    let name = match flag {
        "--system-node-selector" => "systemNodeSelector",
        "--accelerated-node-selector" => "acceleratedNodeSelector",
        "--accelerated-node-toleration" => "acceleratedTolerations",
        "--deployer" => "deployer",
        "--argocd-repo-url" => "argocdRepoUrl",
        _ => return "options".into(),
    };
    field(name)
}

/// Render `recipe` into a gzip-compressed tar archive. `client_recipe` says whether the
/// recipe came in the request (a render failure is then the client's, 422) or was composed
/// from the catalog (a failure is a data problem on the server, 500).
pub fn render_tar_gz(
    recipe: &Recipe,
    options: &BundleOptions,
    client_recipe: bool,
) -> Result<Vec<u8>, ApiError> {
    let map = |e: BundleError| {
        if let BundleError::InvalidOption { flag, .. } = &e {
            return ApiError::bad_request("invalid_body", e.to_string())
                .with_field(option_field(flag));
        }
        if client_recipe {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bundle_failed",
                format!("cannot bundle this recipe: {e}"),
            )
            .with_field("recipe")
        } else {
            ApiError::internal(format!("cannot bundle the catalog recipe: {e}"))
        }
    };
    let bundle = crate::bundle::render(recipe, options).map_err(map)?;
    bundle
        .to_tar_gz()
        .map_err(|e| ApiError::internal(format!("cannot build the bundle archive: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(v: Value) -> Result<BundleOptions, ApiError> {
        match v {
            Value::Object(m) => options_from_json(&m),
            _ => unreachable!("tests pass objects"),
        }
    }

    #[test]
    fn maps_every_option() {
        let o = opts(json!({
            "systemNodeSelector": ["nodeGroup=system"],
            "acceleratedNodeSelector": ["nvidia.com/gpu.present=true"],
            "acceleratedTolerations": ["nvidia.com/gpu=present:NoSchedule"],
            "deployer": "argocd",
            "argocdRepoUrl": "https://git.example.com/bundles.git",
        }))
        .unwrap();
        assert_eq!(o.system_node_selector["nodeGroup"], "system");
        assert_eq!(
            o.accelerated_node_selector["nvidia.com/gpu.present"],
            "true"
        );
        assert_eq!(o.accelerated_tolerations.len(), 1);
        assert_eq!(o.deployer, Deployer::ArgoCd);
        assert_eq!(
            o.argocd_repo_url.as_deref(),
            Some("https://git.example.com/bundles.git")
        );
        assert_eq!(opts(json!({})).unwrap(), BundleOptions::default());
    }

    #[test]
    fn engine_option_errors_are_400_naming_the_field() {
        let recipe = crate::recipe::compose(
            &crate::recipe::Catalog::load(crate::recipe::source::RecipeFiles::builtin()).unwrap(),
            &crate::recipe::Criteria::new(),
        )
        .unwrap();
        // Built directly: the adapter itself would already refuse this URL.
        let o = BundleOptions {
            deployer: Deployer::ArgoCd,
            argocd_repo_url: Some("\"".into()),
            ..BundleOptions::default()
        };
        let e = render_tar_gz(&recipe, &o, false).unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.field.as_deref()),
            (400, Some("options.argocdRepoUrl")),
            "{e}"
        );
        assert_eq!(option_field("--unknown"), "options");
    }

    #[test]
    fn documented_patterns_match_the_engine() {
        // What the engine accepts must match the documented toleration pattern and back;
        // checked on samples since the crate has no regex engine.
        for ok in [
            "nvidia.com/gpu=present:NoSchedule",
            "dedicated:NoExecute",
            "dedicated",
            "k=",
            "a.b/c_d=e-f",
        ] {
            assert!(ok.parse::<Toleration>().is_ok(), "{ok}");
        }
        for bad in ["", "=v", "k=v:Sometimes", "Bad_Prefix/k=v", "-k"] {
            assert!(bad.parse::<Toleration>().is_err(), "{bad}");
        }
        assert!(TOLERATION.starts_with('^') && TOLERATION.ends_with('$'));
        assert!(SELECTOR_ITEM.starts_with('^') && SELECTOR_ITEM.ends_with('$'));
    }

    #[test]
    fn bad_options_name_the_field() {
        for (body, f) in [
            (json!({"deployer": "kapp"}), "options.deployer"),
            (json!({"serial": "yes"}), "options.serial"),
            (json!({"deployer": 1}), "options.deployer"),
            (
                json!({"systemNodeSelector": ["a=-x"]}),
                "options.systemNodeSelector",
            ),
            (
                json!({"systemNodeSelector": {"a": "b"}}),
                "options.systemNodeSelector",
            ),
            (
                json!({"systemNodeSelector": ["a=b", "a=c"]}),
                "options.systemNodeSelector",
            ),
            (
                json!({"acceleratedNodeSelector": [1]}),
                "options.acceleratedNodeSelector[0]",
            ),
            (
                json!({"acceleratedTolerations": ["k=v:Sometimes"]}),
                "options.acceleratedTolerations[0]",
            ),
            (
                json!({"acceleratedTolerations": [1]}),
                "options.acceleratedTolerations[0]",
            ),
            (
                json!({"acceleratedTolerations": "k"}),
                "options.acceleratedTolerations",
            ),
            (json!({"argocdRepoUrl": ""}), "options.argocdRepoUrl"),
            (json!({"argocdRepoUrl": "-x"}), "options.argocdRepoUrl"),
            (json!({"argocdRepoUrl": "a b"}), "options.argocdRepoUrl"),
            (json!({"argocdRepoUrl": "a'b"}), "options.argocdRepoUrl"),
            (json!({"compress": true}), "options.compress"),
        ] {
            let e = opts(body.clone()).unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.field.as_deref()),
                (400, Some(f)),
                "{body}: {e}"
            );
        }
    }
}
