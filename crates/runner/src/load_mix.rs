//! The **load mix** of a live run: which requests the load generator sends and how often, read
//! from a TOML file (format 1, documented at the top of `workloads/rails-app/load-mix.toml`),
//! checked rule by rule with errors naming the file, the request and the field.

use std::path::{Path, PathBuf};

use rand::Rng;
use serde::Deserialize;

/// Why a mix file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MixError {
    #[error("cannot read the load mix {file}: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("load mix {file} is not valid TOML for a mix: {message}")]
    Parse { file: PathBuf, message: String },
    #[error("load mix {file}: {what}")]
    Rule { file: PathBuf, what: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MixFile {
    format: u32,
    request: Vec<RequestKind>,
}

/// One kind of request of the mix.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RequestKind {
    pub name: String,
    pub method: String,
    /// Path and query; every `{id}` is replaced by an integer drawn uniformly from `ids`.
    pub path: String,
    #[serde(default)]
    pub ids: Option<[u64; 2]>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub content_type: Option<String>,
    pub weight: u64,
}

/// A checked mix, ready to draw requests from.
#[derive(Clone, Debug)]
pub struct LoadMix {
    pub file: PathBuf,
    pub kinds: Vec<RequestKind>,
    cumulative: Vec<u64>,
}

/// One request to send.
#[derive(Clone, Debug, PartialEq)]
pub struct Planned {
    /// Index into [`LoadMix::kinds`].
    pub kind: usize,
    pub path: String,
}

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

impl LoadMix {
    pub fn load(file: &Path) -> Result<LoadMix, MixError> {
        let text = std::fs::read_to_string(file).map_err(|source| MixError::Read {
            file: file.to_path_buf(),
            source,
        })?;
        LoadMix::parse(&text, file)
    }

    pub fn parse(text: &str, file: &Path) -> Result<LoadMix, MixError> {
        let m: MixFile = toml::from_str(text).map_err(|e| MixError::Parse {
            file: file.to_path_buf(),
            message: e.to_string(),
        })?;
        let rule = |what: String| MixError::Rule {
            file: file.to_path_buf(),
            what,
        };
        if m.format != 1 {
            return Err(rule(format!(
                "format = {} is not supported: this runner reads format 1",
                m.format
            )));
        }
        if m.request.is_empty() {
            return Err(rule("no [[request]]: give at least one".into()));
        }
        let mut names = Vec::new();
        for r in &m.request {
            let at = format!("request {:?}", r.name);
            let name_ok = !r.name.is_empty()
                && r.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !name_ok {
                return Err(rule(format!(
                    "{at}: `name` must be letters, digits, '_' and '-'"
                )));
            }
            if names.contains(&r.name) {
                return Err(rule(format!("{at}: `name` is used twice")));
            }
            names.push(r.name.clone());
            if !METHODS.contains(&r.method.as_str()) {
                return Err(rule(format!(
                    "{at}: `method` {:?} is not one of {METHODS:?}",
                    r.method
                )));
            }
            if !r.path.starts_with('/') {
                return Err(rule(format!("{at}: `path` must start with '/'")));
            }
            match (r.path.contains("{id}"), r.ids) {
                (true, None) => {
                    return Err(rule(format!(
                        "{at}: `path` has {{id}} but no `ids = [min, max]`"
                    )))
                }
                (false, Some(_)) => {
                    return Err(rule(format!(
                        "{at}: `ids` is given but `path` has no {{id}}"
                    )))
                }
                (true, Some([lo, hi])) if lo < 1 || lo > hi => {
                    return Err(rule(format!(
                        "{at}: `ids = [{lo}, {hi}]` needs 1 <= min <= max"
                    )))
                }
                _ => {}
            }
            if r.body.is_some() != r.content_type.is_some() {
                return Err(rule(format!(
                    "{at}: `content_type` is required with `body` and not allowed without"
                )));
            }
            if r.weight < 1 {
                return Err(rule(format!("{at}: `weight` must be an integer >= 1")));
            }
        }
        let cumulative = m
            .request
            .iter()
            .scan(0u64, |acc, r| {
                *acc += r.weight;
                Some(*acc)
            })
            .collect();
        Ok(LoadMix {
            file: file.to_path_buf(),
            kinds: m.request,
            cumulative,
        })
    }

    /// Draws the next request: a kind by weight, then its `{id}`s.
    pub fn draw(&self, rng: &mut impl Rng) -> Planned {
        let total = *self.cumulative.last().unwrap_or(&1);
        let x = rng.random_range(0..total);
        let kind = self.cumulative.partition_point(|&c| c <= x);
        let k = &self.kinds[kind];
        let path = match k.ids {
            Some([lo, hi]) => {
                let mut out = String::with_capacity(k.path.len() + 8);
                let mut rest = k.path.as_str();
                while let Some(i) = rest.find("{id}") {
                    out.push_str(&rest[..i]);
                    out.push_str(&rng.random_range(lo..=hi).to_string());
                    rest = &rest[i + 4..];
                }
                out.push_str(rest);
                out
            }
            None => k.path.clone(),
        };
        Planned { kind, path }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const MIX: &str = r#"
format = 1
[[request]]
name = "page"
method = "GET"
path = "/p/{id}?x={id}"
ids = [3, 5]
weight = 3
[[request]]
name = "write"
method = "POST"
path = "/w"
body = "{}"
content_type = "application/json"
weight = 1
"#;

    #[test]
    fn draws_by_weight_and_fills_ids() {
        let m = LoadMix::parse(MIX, Path::new("m.toml")).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut counts = [0u32; 2];
        for _ in 0..4000 {
            let p = m.draw(&mut rng);
            counts[p.kind] += 1;
            if p.kind == 0 {
                let id: u64 = p.path[3..4].parse().unwrap();
                assert!((3..=5).contains(&id), "{}", p.path);
                assert!(!p.path.contains("{id}"));
            }
        }
        let share = counts[0] as f64 / 4000.0;
        assert!((share - 0.75).abs() < 0.03, "{share}");
    }

    #[test]
    fn rules_name_the_file_request_and_field() {
        let bad = MIX.replace("ids = [3, 5]\n", "");
        let e = LoadMix::parse(&bad, Path::new("m.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("m.toml") && e.contains("\"page\"") && e.contains("ids"),
            "{e}"
        );
        let bad = MIX.replace("content_type = \"application/json\"\n", "");
        let e = LoadMix::parse(&bad, Path::new("m.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("content_type"), "{e}");
        let bad = MIX.replace("format = 1", "format = 2");
        assert!(LoadMix::parse(&bad, Path::new("m.toml")).is_err());
        let bad = MIX.replace("method = \"GET\"", "method = \"FETCH\"");
        assert!(LoadMix::parse(&bad, Path::new("m.toml")).is_err());
    }

    #[test]
    fn the_bundled_rails_mix_is_valid() {
        let file =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workloads/rails-app/load-mix.toml");
        let m = LoadMix::load(&file).unwrap();
        assert!(m.kinds.len() >= 5);
    }
}
