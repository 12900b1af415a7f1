//! Profile validation: shipped profiles load; bad ones are rejected naming file, field and fix.

use std::path::{Path, PathBuf};

use workload::{Profile, ProfileError};

fn workloads_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workloads")
}

fn rails_api_text() -> String {
    std::fs::read_to_string(workloads_dir().join("rails-api.toml")).expect("rails-api.toml")
}

#[test]
fn every_shipped_profile_is_valid_and_cites_sources() {
    let dir = workloads_dir();
    let names = workload::profile::known_profiles(&dir);
    for want in ["rails-api", "rails-html", "sidekiq"] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    for name in names {
        let path = dir.join(format!("{name}.toml"));
        let p = Profile::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            p.name,
            name,
            "{}: name must match the file name",
            path.display()
        );
        // Every parameter carries a comment naming its basis, or continues the group of the
        // line above it (`string_min` after `string_weight ... # (S) ...`).
        let text = std::fs::read_to_string(&path).unwrap();
        let mut prev_prefix = String::new();
        for line in text.lines() {
            let l = line.trim();
            // Section headers, and the rows and end of a table (`[mix] table = [...]`).
            if l.is_empty() || l.starts_with('#') || l.starts_with('[') || l == "]" {
                continue;
            }
            let key = l.split('=').next().unwrap_or("").trim();
            let prefix = key.split('_').next().unwrap_or("").to_string();
            if key == "name" || key == "description" || key == "extends" {
                continue;
            }
            let sourced = ["(S)", "(E)", "(M)"].iter().any(|m| l.contains(m));
            assert!(
                sourced || prefix == prev_prefix,
                "{}: `{l}` has no (S)/(E)/(M) basis",
                path.display()
            );
            prev_prefix = prefix;
        }
    }
}

#[test]
fn out_of_range_names_file_field_and_allowed_values() {
    let text = rails_api_text().replace("threads = 5 ", "threads = 0 ");
    let err = Profile::from_toml(&text, Path::new("my.toml")).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, ProfileError::OutOfRange { ref field, .. } if field == "process.threads"),
        "{msg}"
    );
    assert!(
        msg.contains("my.toml") && msg.contains("process.threads") && msg.contains("[1, 64]"),
        "{msg}"
    );

    let text = rails_api_text().replace("immediate = 0.52 ", "immediate = 0.99 ");
    let msg = Profile::from_toml(&text, Path::new("x.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("lifetimes.immediate") && msg.contains("promoted"),
        "{msg}"
    );

    let text = rails_api_text().replace("socket_keep_max = 8_192", "socket_keep_max = 100");
    let msg = Profile::from_toml(&text, Path::new("x.toml"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("requests.socket_keep_min"), "{msg}");
}

#[test]
fn malformed_unknown_and_missing_fields_are_parse_errors_with_the_file() {
    let err = Profile::from_toml("name = \"x\"\n[process\n", Path::new("broken.toml")).unwrap_err();
    assert!(matches!(err, ProfileError::Parse { .. }));
    assert!(err.to_string().contains("broken.toml"), "{err}");

    let text = rails_api_text().replace("gvl = true", "gvl = true\nfibers = 3");
    let msg = Profile::from_toml(&text, Path::new("x.toml"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("fibers"), "unknown field must be named: {msg}");

    let text = rails_api_text().replace("rate_per_s = 20.0", "");
    let msg = Profile::from_toml(&text, Path::new("x.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("rate_per_s"),
        "missing field must be named: {msg}"
    );

    let text = rails_api_text().replace("rate_per_s = 20.0", "rate_per_s = \"fast\"");
    let msg = Profile::from_toml(&text, Path::new("x.toml"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("rate_per_s") || msg.contains("line"), "{msg}");
}

#[test]
fn resolve_finds_names_and_reports_known_profiles() {
    let dir = workloads_dir();
    assert!(Profile::resolve("rails-api", &dir)
        .unwrap()
        .ends_with("rails-api.toml"));
    let err = Profile::resolve("rails-apx", &dir).unwrap_err().to_string();
    assert!(
        err.contains("rails-apx") && err.contains("rails-api"),
        "{err}"
    );
    let err = Profile::load(Path::new("/nonexistent/p.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/p.toml"), "{err}");
}

#[test]
fn a_profile_extends_another_and_overrides_only_what_it_says() {
    let dir = workloads_dir();
    let api = Profile::load(&dir.join("rails-api.toml")).unwrap();
    let html = Profile::load(&dir.join("rails-html.toml")).unwrap();
    assert_eq!(html.name, "rails-html");
    assert_eq!(html.requests.rate_per_s, 14.0);
    assert_eq!(html.cache.lookups_per_request, 8.0);
    // Not set in rails-html: rails-api's.
    assert_eq!(html.gc, api.gc);
    assert_eq!(html.requests.io_fraction, api.requests.io_fraction);
    assert_eq!(html.mix.struct_weight, api.mix.struct_weight);
    assert_eq!(html.mix.table, api.mix.table);

    let tmp = std::env::temp_dir().join(format!("lh-extends-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let missing = tmp.join("child.toml");
    std::fs::write(&missing, "extends = \"nope\"\nname = \"child\"\n").unwrap();
    let msg = Profile::load(&missing).unwrap_err().to_string();
    assert!(msg.contains("nope.toml"), "{msg}");
    let a = tmp.join("a.toml");
    std::fs::write(&a, "extends = \"b\"\n").unwrap();
    std::fs::write(tmp.join("b.toml"), "extends = \"a\"\n").unwrap();
    let msg = Profile::load(&a).unwrap_err().to_string();
    assert!(msg.contains("loop"), "{msg}");
    let _ = std::fs::remove_dir_all(&tmp);
}
