//! The **cells** of a run and of a matrix. A run repeats each allocator under test `--repeat`
//! times in an interleaved order (a b c, b c a, c a b, ...), so that a drift of the machine
//! (another job starting, the page cache filling) does not fall on one allocator; a matrix is
//! every (workload, seed) pair times those cells, and `--shard i/n` runs every n-th cell of it,
//! starting with the i-th, so that n machines share the matrix evenly.

use rundir::{Cell, Shard};

/// `--shard i/n` as given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardArg(pub Shard);

impl std::str::FromStr for ShardArg {
    type Err = String;
    fn from_str(s: &str) -> Result<ShardArg, String> {
        let bad = || {
            format!("{s:?} is not a shard: give i/n with 1 <= i <= n, e.g. --shard 2/4 for the second of four")
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(ShardArg(Shard { index, count }))
    }
}

/// The cells one run directory runs, in order, and what they are part of.
#[derive(Clone, Debug, PartialEq)]
pub struct CellPlan {
    /// Repetitions of each allocator in the whole matrix (`--repeat`).
    pub repeat: u32,
    pub cells: Vec<Cell>,
    pub shard: Option<Shard>,
}

impl CellPlan {
    /// Each allocator once, in the given order.
    pub fn once(ids: &[String]) -> CellPlan {
        CellPlan {
            repeat: 1,
            cells: interleaved(ids, 1),
            shard: None,
        }
    }
}

/// `repeat` rounds over the allocators `ids`, round r (1-based) starting with the r-th
/// allocator: a b c, b c a, c a b, a b c, ...
pub fn interleaved(ids: &[String], repeat: u32) -> Vec<Cell> {
    let n = ids.len();
    (1..=repeat)
        .flat_map(|r| {
            (0..n).map(move |k| Cell {
                allocator: ids[(k + (r as usize - 1)) % n.max(1)].clone(),
                repetition: r,
            })
        })
        .collect()
}

/// The cells of a matrix of `groups` (workload, seed) pairs, group by group, each group's cells
/// interleaved; then those of `shard` (every `count`-th cell from the `index`-th), per group.
pub fn matrix(groups: usize, ids: &[String], repeat: u32, shard: Option<Shard>) -> Vec<CellPlan> {
    let per_group = interleaved(ids, repeat);
    let mut position = 0usize;
    (0..groups)
        .map(|_| {
            let cells = per_group
                .iter()
                .filter(|_| {
                    let p = position;
                    position += 1;
                    shard.map_or(true, |s| p % s.count as usize == (s.index - 1) as usize)
                })
                .cloned()
                .collect();
            CellPlan {
                repeat,
                cells,
                shard,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn names(cells: &[Cell]) -> String {
        cells
            .iter()
            .map(|c| format!("{}{}", c.allocator, c.repetition))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn rounds_rotate_the_allocator_order() {
        let c = interleaved(&ids(&["a", "b", "c"]), 4);
        assert_eq!(names(&c), "a1 b1 c1 b2 c2 a2 c3 a3 b3 a4 b4 c4");
    }

    #[test]
    fn shards_split_the_matrix_without_overlap_or_gap() {
        let all = matrix(2, &ids(&["a", "b"]), 3, None);
        let total: usize = all.iter().map(|p| p.cells.len()).sum();
        assert_eq!(total, 12);
        let mut seen = Vec::new();
        for i in 1..=4 {
            let parts = matrix(2, &ids(&["a", "b"]), 3, Some(Shard { index: i, count: 4 }));
            let n: usize = parts.iter().map(|p| p.cells.len()).sum();
            assert_eq!(n, 3, "shard {i} of 4 gets 12/4 cells");
            for (g, p) in parts.iter().enumerate() {
                for c in &p.cells {
                    seen.push((g, c.clone()));
                }
            }
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 12);
    }

    #[test]
    fn shard_argument_is_checked() {
        assert_eq!(
            "2/4".parse::<ShardArg>().unwrap().0,
            Shard { index: 2, count: 4 }
        );
        for bad in ["0/4", "5/4", "x", "1/", "1-2"] {
            assert!(
                bad.parse::<ShardArg>().unwrap_err().contains("--shard 2/4"),
                "{bad}"
            );
        }
    }
}
