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
//! ```

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
            }),
            _ => Err(ProductError::Invalid {
                origin: origin.to_string(),
                problems,
            }),
        }
    }
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
