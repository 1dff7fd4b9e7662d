//! The product file of a submission (`--product product.yaml`): the PRODUCT.yaml metadata
//! that a run cannot know.
//!
//! ```yaml
//! platformName: Acme AI Cloud
//! platformVersion: "2.3"
//! vendorName: Acme Corporation        # exactly as listed under CNCF Members in the landscape
//! websiteUrl: https://acme.example/ai
//! repoUrl: https://github.com/acme/ai-cloud     # optional
//! documentationUrl: https://acme.example/ai/docs
//! productLogoUrl: https://acme.example/logo.svg
//! description: Acme's managed Kubernetes for AI workloads.
//! contactEmailAddress: conformance@acme.example
//! k8sConformanceUrl: https://github.com/cncf/k8s-conformance/tree/master/v1.34/acme-ai-cloud
//! directory: acme-ai-cloud            # optional: vX.Y/<directory>/, default from platformName
//! layers:                             # optional: a layered product (program FAQ)
//!   - name: Acme Kubernetes Engine
//!     role: base                      # exactly one base: infrastructure + Kubernetes
//!     certification: https://github.com/cncf/k8s-ai-conformance/tree/main/v1.37/ake  # optional
//!   - name: Acme AI Stack
//!     role: add-on                    # runtime, schedulers, operators, device plugins, ...
//!     provides:                       # requirement id: replaces | extends | adds | matches
//!       gang_scheduling: replaces     #   (what the layer does relative to the base)
//! ```
//!
//! In a layered product each requirement is provided by the add-on that lists it, else by
//! the base; its PRODUCT.yaml notes start with `Layer: <name> (<role>[, <relation>])`. The
//! program judges the whole platform and wants a layered product to contribute at least one
//! requirement of its own (an add-on that replaces, extends or adds one).

use std::path::Path;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::yaml::YamlError;

/// A product file that cannot describe a submission.
#[derive(Debug, thiserror::Error)]
pub enum ProductError {
    #[error("{0}")]
    Yaml(#[from] YamlError),
    #[error("cannot read product file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("product file {origin} is not complete:\n  {}", problems.join("\n  "))]
    Invalid {
        origin: String,
        problems: Vec<String>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Raw {
    platform_name: Option<Spanned<String>>,
    platform_version: Option<Spanned<String>>,
    vendor_name: Option<Spanned<String>>,
    website_url: Option<Spanned<String>>,
    repo_url: Option<Spanned<String>>,
    documentation_url: Option<Spanned<String>>,
    product_logo_url: Option<Spanned<String>>,
    description: Option<Spanned<String>>,
    contact_email_address: Option<Spanned<String>>,
    k8s_conformance_url: Option<Spanned<String>>,
    directory: Option<Spanned<String>>,
    #[serde(default)]
    layers: Vec<Layer>,
}

/// One layer of a layered product.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Layer {
    pub name: String,
    pub role: LayerRole,
    /// The layer's own AI conformance submission, when it has one.
    #[serde(default)]
    pub certification: Option<String>,
    /// Requirement ids this layer provides, with what it does relative to the base.
    #[serde(default)]
    pub provides: std::collections::BTreeMap<String, Relation>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum LayerRole {
    #[serde(rename = "base")]
    Base,
    #[serde(rename = "add-on")]
    AddOn,
}

/// What an add-on's implementation of a requirement is relative to the base's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Relation {
    /// Replaces the base's implementation (e.g. another gang scheduler).
    Replaces,
    /// A meaningfully different variant of what the base offers.
    Extends,
    /// Something the base does not offer.
    Adds,
    /// The same as the base's.
    Matches,
}

impl Relation {
    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Replaces => "replaces the base",
            Relation::Extends => "extends the base",
            Relation::Adds => "adds to the base",
            Relation::Matches => "matches the base",
        }
    }

    /// Whether it counts as the layered product's own contribution.
    pub fn is_own(self) -> bool {
        self != Relation::Matches
    }
}

/// Notes of a layered product's requirement start with this.
pub const LAYER_NOTE: &str = "Layer: ";
/// Notes of a requirement the product contributes itself contain one of these.
pub const OWN_MARKERS: [&str; 3] = [
    "(add-on, replaces the base)",
    "(add-on, extends the base)",
    "(add-on, adds to the base)",
];

/// Who provides one requirement in a layered product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provider<'a> {
    pub layer: &'a Layer,
    /// `None` for the base.
    pub relation: Option<Relation>,
}

impl Provider<'_> {
    /// `Layer: Acme AI Stack (add-on, replaces the base)`.
    pub fn note(&self) -> String {
        match self.relation {
            Some(r) => format!("{LAYER_NOTE}{} (add-on, {})", self.layer.name, r.as_str()),
            None => format!("{LAYER_NOTE}{} (base)", self.layer.name),
        }
    }
}

/// Checked product metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub platform_name: String,
    pub platform_version: String,
    pub vendor_name: String,
    pub website_url: String,
    pub repo_url: Option<String>,
    pub documentation_url: String,
    pub product_logo_url: String,
    pub description: String,
    pub contact_email_address: String,
    pub k8s_conformance_url: String,
    /// The `vX.Y/<directory>/` name.
    pub directory: String,
    /// Empty, or the layers of a layered product: one base first, then add-ons.
    pub layers: Vec<Layer>,
}

impl Product {
    /// PRODUCT.yaml `metadata` entries (without `kubernetesVersion`), in the template's order.
    pub fn metadata(&self) -> Vec<(&'static str, &str)> {
        let mut m = vec![
            ("platformName", self.platform_name.as_str()),
            ("platformVersion", self.platform_version.as_str()),
            ("vendorName", self.vendor_name.as_str()),
            ("websiteUrl", self.website_url.as_str()),
        ];
        if let Some(r) = &self.repo_url {
            m.push(("repoUrl", r.as_str()));
        }
        m.extend([
            ("documentationUrl", self.documentation_url.as_str()),
            ("productLogoUrl", self.product_logo_url.as_str()),
            ("description", self.description.as_str()),
            ("contactEmailAddress", self.contact_email_address.as_str()),
            ("k8sConformanceUrl", self.k8s_conformance_url.as_str()),
        ]);
        m
    }

    /// The layer providing requirement `id`: the add-on listing it, else the base. `None` for
    /// a product without layers.
    pub fn provider(&self, id: &str) -> Option<Provider<'_>> {
        if let Some((layer, r)) = self
            .layers
            .iter()
            .find_map(|l| l.provides.get(id).map(|r| (l, *r)))
        {
            return Some(Provider {
                layer,
                relation: (layer.role == LayerRole::AddOn).then_some(r),
            });
        }
        self.layers
            .iter()
            .find(|l| l.role == LayerRole::Base)
            .map(|layer| Provider {
                layer,
                relation: None,
            })
    }

    /// Requirement ids the layers name that `known` does not contain.
    pub fn unknown_requirements<'a>(&'a self, known: &[&str]) -> Vec<(&'a str, &'a str)> {
        self.layers
            .iter()
            .flat_map(|l| {
                l.provides
                    .keys()
                    .map(move |id| (l.name.as_str(), id.as_str()))
            })
            .filter(|(_, id)| !known.contains(id))
            .collect()
    }

    /// Whether a layered product provides no requirement of its own (no add-on replaces,
    /// extends or adds one).
    pub fn contributes_nothing(&self) -> bool {
        !self.layers.is_empty()
            && !self
                .layers
                .iter()
                .any(|l| l.role == LayerRole::AddOn && l.provides.values().any(|r| r.is_own()))
    }

    pub fn load(path: &Path) -> Result<Product, ProductError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProductError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parse and check; every problem is reported at once, each naming its field and line.
    pub fn parse(text: &str, origin: &str) -> Result<Product, ProductError> {
        let raw: Raw = crate::yaml::from_str(text, origin)?;
        let mut problems: Vec<String> = Vec::new();
        let mut field = |name: &str, v: Option<Spanned<String>>, kind: Kind| -> Option<String> {
            let Some(v) = v else {
                if kind.required() {
                    problems.push(format!("{name}: missing; {}", kind.hint()));
                }
                return None;
            };
            let line = v.referenced.line();
            let value = v.value.trim().to_string();
            let problem = if value.is_empty() {
                kind.required().then(|| "is empty".to_string())
            } else if is_placeholder(&value) {
                Some(format!("`{value}` is a template placeholder"))
            } else {
                kind.check(&value)
            };
            match problem {
                Some(p) => {
                    problems.push(format!("{origin}:{line}: {name}: {p}; {}", kind.hint()));
                    None
                }
                None => (!value.is_empty()).then_some(value),
            }
        };
        let platform_name = field("platformName", raw.platform_name, Kind::Text);
        let platform_version = field("platformVersion", raw.platform_version, Kind::Text);
        let vendor_name = field("vendorName", raw.vendor_name, Kind::Vendor);
        let website_url = field("websiteUrl", raw.website_url, Kind::Url);
        let repo_url = field("repoUrl", raw.repo_url, Kind::Optional);
        let documentation_url = field("documentationUrl", raw.documentation_url, Kind::Url);
        let product_logo_url = field("productLogoUrl", raw.product_logo_url, Kind::Url);
        let description = field("description", raw.description, Kind::Text);
        let contact = field(
            "contactEmailAddress",
            raw.contact_email_address,
            Kind::Email,
        );
        let k8s = field(
            "k8sConformanceUrl",
            raw.k8s_conformance_url,
            Kind::K8sConformance,
        );
        let directory = field("directory", raw.directory, Kind::Directory);
        let directory = directory.or_else(|| platform_name.as_deref().map(slug));
        problems.extend(layer_problems(&raw.layers, origin));
        if let Some(d) = &directory
            && d.is_empty()
        {
            problems.push(format!(
                "directory: platformName gives no usable directory name; {}",
                Kind::Directory.hint()
            ));
        }
        match (
            platform_name,
            platform_version,
            vendor_name,
            website_url,
            documentation_url,
            product_logo_url,
            description,
            contact,
            k8s,
            directory,
        ) {
            (
                Some(a),
                Some(b),
                Some(c),
                Some(d),
                Some(e),
                Some(f),
                Some(g),
                Some(h),
                Some(i),
                Some(j),
            ) if problems.is_empty() => Ok(Product {
                platform_name: a,
                platform_version: b,
                vendor_name: c,
                website_url: d,
                repo_url,
                documentation_url: e,
                product_logo_url: f,
                description: g,
                contact_email_address: h,
                k8s_conformance_url: i,
                directory: j,
                layers: raw.layers,
            }),
            _ => Err(ProductError::Invalid {
                origin: origin.to_string(),
                problems,
            }),
        }
    }
}

/// A layered product has exactly one base; each requirement is provided by one layer; a
/// certification is an http(s) URL.
fn layer_problems(layers: &[Layer], origin: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if layers.is_empty() {
        return problems;
    }
    let bases = layers.iter().filter(|l| l.role == LayerRole::Base).count();
    if bases != 1 {
        problems.push(format!(
            "{origin}: layers: {bases} layers have role base; a layered product names exactly one base (infrastructure and Kubernetes) and its add-ons"
        ));
    }
    let mut seen: std::collections::BTreeMap<&str, &str> = Default::default();
    for l in layers {
        if l.name.trim().is_empty() {
            problems.push(format!("{origin}: layers: a layer has an empty name"));
        }
        if let Some(url) = &l.certification
            && let Some(p) = url_problem(url)
        {
            problems.push(format!(
                "{origin}: layers: `{}` certification: {p}; give the URL of its AI conformance submission",
                l.name
            ));
        }
        for id in l.provides.keys() {
            if let Some(other) = seen.insert(id, &l.name) {
                problems.push(format!(
                    "{origin}: layers: `{id}` is provided by both `{other}` and `{}`; name one layer per requirement",
                    l.name
                ));
            }
        }
    }
    problems
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Vendor,
    Url,
    /// `repoUrl`: a URL when given.
    Optional,
    Email,
    K8sConformance,
    Directory,
}

impl Kind {
    fn required(self) -> bool {
        !matches!(self, Kind::Optional | Kind::Directory)
    }

    fn check(self, v: &str) -> Option<String> {
        match self {
            Kind::Text | Kind::Vendor => None,
            Kind::Url | Kind::Optional => url_problem(v),
            Kind::Email => {
                let ok = v.split_once('@').is_some_and(|(a, b)| {
                    !a.is_empty() && b.contains('.') && !b.starts_with('.') && !v.contains(' ')
                });
                (!ok).then(|| format!("`{v}` is not an email address"))
            }
            Kind::K8sConformance => (!is_k8s_conformance_url(v))
                .then(|| format!("`{v}` is not a cncf/k8s-conformance submission URL")),
            Kind::Directory => (slug(v) != v).then(|| format!("`{v}` is not a directory name")),
        }
    }

    fn hint(self) -> &'static str {
        match self {
            Kind::Text => "give the product's real value",
            Kind::Vendor => {
                "give the legal entity exactly as listed under CNCF Members at https://landscape.cncf.io/members"
            }
            Kind::Url | Kind::Optional => "give an http(s) URL",
            Kind::Email => "give a contact email address",
            Kind::K8sConformance => {
                "give https://github.com/cncf/k8s-conformance/tree/master/vX.Y/<product> (your Kubernetes conformance submission)"
            }
            Kind::Directory => "use lowercase letters, digits, `.`, `_` and `-`",
        }
    }
}

/// The program's placeholder form: `[...]`.
pub fn is_placeholder(v: &str) -> bool {
    let v = v.trim();
    v.starts_with('[') && v.ends_with(']')
}

/// Why `v` is not an http(s) URL with a host, if it is not.
pub fn url_problem(v: &str) -> Option<String> {
    let rest = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"));
    match rest {
        None => Some(format!("`{v}` is not an http(s) URL")),
        Some(r) => {
            let host = r.split(['/', '?', '#']).next().unwrap_or("");
            let host_ok = !host.is_empty()
                && !v.contains(char::is_whitespace)
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]@".contains(&b));
            (!host_ok).then(|| format!("`{v}` has no valid host"))
        }
    }
}

/// `https://github.com/cncf/k8s-conformance/tree/(master|main)/vX.Y/<product>[/]`, the form
/// the program's CI requires.
pub fn is_k8s_conformance_url(v: &str) -> bool {
    let Some(rest) = v.strip_prefix("https://github.com/cncf/k8s-conformance/tree/") else {
        return false;
    };
    let Some(rest) = rest
        .strip_prefix("master/")
        .or_else(|| rest.strip_prefix("main/"))
    else {
        return false;
    };
    let Some((ver, product)) = rest.split_once('/') else {
        return false;
    };
    let ver_ok = ver.strip_prefix('v').is_some_and(|mm| {
        mm.split_once('.').is_some_and(|(a, b)| {
            [a, b]
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
        })
    });
    let product = product.strip_suffix('/').unwrap_or(product);
    ver_ok && !product.is_empty() && !product.contains('/')
}

/// `Acme AI Cloud` -> `acme-ai-cloud`.
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.trim().chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches(['-', '.']).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const GOOD: &str = "platformName: Acme AI Cloud\nplatformVersion: \"2.3\"\nvendorName: Acme Corporation\nwebsiteUrl: https://acme.example/ai\ndocumentationUrl: https://acme.example/ai/docs\nproductLogoUrl: https://acme.example/logo.svg\ndescription: Acme's managed Kubernetes for AI workloads.\ncontactEmailAddress: conformance@acme.example\nk8sConformanceUrl: https://github.com/cncf/k8s-conformance/tree/master/v1.34/acme-ai-cloud\n";

    #[test]
    fn a_complete_file() {
        let p = Product::parse(GOOD, "product.yaml").unwrap();
        assert_eq!(p.directory, "acme-ai-cloud");
        assert_eq!(p.repo_url, None);
        assert_eq!(p.metadata().len(), 9);
        assert_eq!(p.metadata()[0], ("platformName", "Acme AI Cloud"));
    }

    #[test]
    fn placeholders_and_bad_values_name_the_field() {
        let text = GOOD
            .replace("Acme Corporation", "\"[Vendor Name]\"")
            .replace("conformance@acme.example", "nobody")
            .replace("tree/master/v1.34", "blob/master/v1.34")
            .replace("https://acme.example/logo.svg", "logo.svg");
        let e = Product::parse(&text, "p.yaml").unwrap_err().to_string();
        assert!(
            e.contains("p.yaml:3: vendorName: `[Vendor Name]` is a template placeholder"),
            "{e}"
        );
        assert!(
            e.contains("p.yaml:8: contactEmailAddress: `nobody` is not an email address"),
            "{e}"
        );
        assert!(
            e.contains("k8sConformanceUrl: `https://github.com/cncf/k8s-conformance/blob"),
            "{e}"
        );
        assert!(
            e.contains("p.yaml:6: productLogoUrl: `logo.svg` is not an http(s) URL"),
            "{e}"
        );
        let e = Product::parse("platformName: x\n", "p.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("platformVersion: missing"), "{e}");
        assert!(e.contains("k8sConformanceUrl: missing"), "{e}");
        let e = Product::parse("platformNam: x\n", "p.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("platformNam"), "{e}");
    }

    #[test]
    fn layers_name_who_provides_each_requirement() {
        let text = format!(
            "{GOOD}layers:\n  - name: AKE\n    role: base\n    certification: https://github.com/cncf/k8s-ai-conformance/tree/main/v1.37/ake\n  - name: Acme AI Stack\n    role: add-on\n    provides:\n      gang_scheduling: replaces\n      ai_inference: matches\n"
        );
        let p = Product::parse(&text, "p.yaml").unwrap();
        assert_eq!(
            p.provider("gang_scheduling").unwrap().note(),
            "Layer: Acme AI Stack (add-on, replaces the base)"
        );
        assert_eq!(
            p.provider("ai_inference").unwrap().note(),
            "Layer: Acme AI Stack (add-on, matches the base)"
        );
        assert_eq!(
            p.provider("robust_controller").unwrap().note(),
            "Layer: AKE (base)"
        );
        assert!(!p.contributes_nothing());
        assert_eq!(
            p.unknown_requirements(&["gang_scheduling"]),
            [("Acme AI Stack", "ai_inference")]
        );
        let matches_only = text.replace("gang_scheduling: replaces", "gang_scheduling: matches");
        assert!(
            Product::parse(&matches_only, "p.yaml")
                .unwrap()
                .contributes_nothing()
        );
        assert!(
            Product::parse(GOOD, "p.yaml")
                .unwrap()
                .provider("x")
                .is_none()
        );
        let two_bases = text.replace("role: add-on", "role: base");
        let e = Product::parse(&two_bases, "p.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("2 layers have role base"), "{e}");
        let e = Product::parse(&text.replace("replaces", "improves"), "p.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("improves"), "{e}");
    }

    #[test]
    fn k8s_conformance_url_form() {
        for ok in [
            "https://github.com/cncf/k8s-conformance/tree/master/v1.34/gke",
            "https://github.com/cncf/k8s-conformance/tree/main/v1.35/eks/",
        ] {
            assert!(is_k8s_conformance_url(ok), "{ok}");
        }
        for bad in [
            "http://github.com/cncf/k8s-conformance/tree/master/v1.34/gke",
            "https://github.com/cncf/k8s-conformance/tree/dev/v1.34/gke",
            "https://github.com/cncf/k8s-conformance/tree/master/1.34/gke",
            "https://github.com/cncf/k8s-conformance/tree/master/v1.34/",
            "https://github.com/cncf/k8s-conformance/tree/master/v1.34/gke/x",
        ] {
            assert!(!is_k8s_conformance_url(bad), "{bad}");
        }
        assert_eq!(slug(" Acme  AI/Cloud! "), "acme-ai-cloud");
        assert!(url_problem("https://a.b/c").is_none());
        assert!(url_problem("https:///c").is_some());
    }
}
