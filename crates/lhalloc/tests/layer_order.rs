//! The layer order written in the crate README is true: every file in `src/` names (as
//! `crate::x`) only modules of rows above its own row of the README's layer table.

use std::collections::HashMap;
use std::path::Path;

#[test]
fn modules_only_use_the_layers_above_them() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("read README.md");
    let table = readme
        .split("## Layer order")
        .nth(1)
        .expect("a '## Layer order' section");
    let mut rank: HashMap<String, usize> = HashMap::new();
    for (row, line) in table
        .lines()
        .skip_while(|l| !l.starts_with("| `"))
        .take_while(|l| l.starts_with('|'))
        .enumerate()
    {
        let first_cell = line.split('|').nth(1).unwrap_or("");
        for name in first_cell.split('`').skip(1).step_by(2) {
            let module = name.trim_end_matches(".rs").to_string();
            rank.insert(module, row);
        }
    }
    assert!(
        rank.len() >= 20,
        "layer table not found or too short: {rank:?}"
    );
    let mut violations = Vec::new();
    for entry in std::fs::read_dir(root.join("src")).expect("read src/") {
        let path = entry.expect("dir entry").path();
        let module = path.file_stem().unwrap().to_string_lossy().to_string();
        if module == "lib" {
            continue;
        }
        let Some(&my_rank) = rank.get(&module) else {
            violations.push(format!("{module}.rs is not in the README's layer table"));
            continue;
        };
        let text = std::fs::read_to_string(&path).expect("read source");
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for part in line.split("crate::").skip(1) {
                let used: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if let Some(&r) = rank.get(&used) {
                    if r >= my_rank && used != module {
                        violations.push(format!("{module}.rs uses {used} (row {r} >= {my_rank})"));
                    }
                }
            }
        }
    }
    assert!(violations.is_empty(), "{violations:#?}");
}
