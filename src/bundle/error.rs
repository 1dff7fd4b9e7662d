use crate::yaml::YamlError;

/// Everything that can go wrong rendering, writing or verifying a bundle. Each variant names
/// the component, file or directory at fault and, where there is one, the fix.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(
        "component `{component}`: {what} `{name}` is not allowed: {reason}; fix the recipe (names become paths inside the bundle)"
    )]
    UnsafeName {
        component: String,
        what: &'static str,
        name: String,
        reason: String,
    },
    #[error("component `{component}`: {field} `{value}` is not valid: {reason}; fix the recipe")]
    InvalidField {
        component: String,
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("recipe {field} `{value}` is not valid: {reason}; fix the recipe")]
    InvalidRecipe {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("component `{name}` appears twice in the recipe; each component must be unique")]
    DuplicateComponent { name: String },
    #[error("component `{component}` has two manifests named `{name}`; rename one of them")]
    DuplicateManifest { component: String, name: String },
    #[error(
        "component `{component}`: health check kind `{kind}` is not supported; use Deployment, DaemonSet, StatefulSet or CustomResourceDefinition"
    )]
    UnsupportedHealthCheck { component: String, kind: String },
    #[error(
        "component `{component}`: cannot inject node placement at values path `{path}`: it is {found}, expected {expected}; fix the recipe values"
    )]
    ValuesConflict {
        component: String,
        path: String,
        found: &'static str,
        expected: &'static str,
    },
    #[error("component `{component}`: manifest `{manifest}`: {message}")]
    InvalidManifest {
        component: String,
        manifest: String,
        message: String,
    },
    #[error("invalid {flag} `{value}`: {reason}")]
    InvalidOption {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error(
        "component `{component}` depends on `{dependency}`, which is not an earlier component of the recipe; add `{dependency}` to the recipe or drop it from dependencyRefs"
    )]
    UnknownDependency {
        component: String,
        dependency: String,
    },
    #[error("{0}")]
    Yaml(#[from] YamlError),
    #[error("cannot encode {what}: {message}")]
    Encode { what: String, message: String },
    #[error(
        "output directory {dir} is not empty; pass --force to replace it, or choose another --output"
    )]
    OutputNotEmpty { dir: String },
    #[error("output {path} exists and is not a directory; choose another --output")]
    OutputNotDirectory { path: String },
    #[error("refusing to replace {dir}: {reason}; choose another --output")]
    OutputRefused { dir: String, reason: String },
    #[error("{context} {path}: {source}")]
    Io {
        context: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("bundle path `{path}` is not allowed: {reason}")]
    UnsafePath { path: String, reason: String },
    #[error(transparent)]
    Signature(#[from] super::sign::SignError),
    #[error(
        "bundle {dir} is not signed (no bundle.yaml.sig); sign it with `aiconform bundle sign {dir} --key KEY`, or verify without --key"
    )]
    Unsigned { dir: String },
    #[error(
        "--vendor-charts does not apply to --deployer {deployer}: its controllers fetch each chart in the cluster from the chart source, not from the bundle; vendored charts install with --deployer helm, helmfile (or `aiconform deploy`); for {deployer}, mirror the charts into a registry the cluster reaches (`aiconform mirror list`) and point the recipe's sources at it"
    )]
    VendorUnsupported { deployer: String },
    #[error(
        "component `{component}`: chart {chart} has no source to vendor it from; set the component's `source` (chart repository URL or oci:// location) in the recipe"
    )]
    VendorNoSource { component: String, chart: String },
    #[error(
        "component `{component}`: cannot vendor chart {chart} version {version} from {location}: {reason}; check that {location} is reachable from here and serves {chart} {version} (pass --plain-http or --ca-file for a local registry), or fix the recipe's source and version"
    )]
    VendorPull {
        component: String,
        chart: String,
        version: String,
        location: String,
        reason: String,
    },
    #[error(
        "components `{first}` and `{second}` both vendor {file} with different content; give the charts different versions or names"
    )]
    VendorConflict {
        first: String,
        second: String,
        file: String,
    },
    #[error("{dir} is not a valid aiconform bundle: {reason}; render one with `aiconform bundle`")]
    NotABundle { dir: String, reason: String },
}

impl BundleError {
    pub(crate) fn io(
        context: &'static str,
        path: &std::path::Path,
        source: std::io::Error,
    ) -> Self {
        BundleError::Io {
            context,
            path: path.display().to_string(),
            source,
        }
    }
}
