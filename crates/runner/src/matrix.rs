//! The **cells** of a run and of a matrix. A run repeats each allocator under test `--repeat`
//! times in an interleaved order (a b c, b c a, c a b, ...), so that a drift of the machine
//! (another job starting, the page cache filling) does not fall on one allocator; a matrix is
//! every (workload, seed) pair times those cells, and `--shard i/n` runs every n-th round (one
//! repetition of every allocator) of it, starting with the i-th, or every n-th cell when there
//! are fewer rounds than shards, so that n machines share the matrix evenly.

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
/// interleaved; then those of `shard`, per group. A shard takes whole **rounds** (one
/// repetition of every allocator of one group: every `count`-th round from the `index`-th)
/// when the matrix has at least as many rounds as shards, so that each allocator's ratio to
/// the reference allocator is measured on one machine, back to back; otherwise single cells
/// (every `count`-th cell from the `index`-th).
pub fn matrix(groups: usize, ids: &[String], repeat: u32, shard: Option<Shard>) -> Vec<CellPlan> {
    let per_group = interleaved(ids, repeat);
    let rounds = groups * repeat as usize;
    let by_round = shard.is_some_and(|s| rounds >= s.count as usize);
    let mut position = 0usize;
    (0..groups)
        .map(|g| {
            let cells = per_group
                .iter()
                .filter(|c| {
                    let p = if by_round {
                        g * repeat as usize + (c.repetition as usize - 1)
                    } else {
                        position
                    };
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
            // Six rounds of two cells over four shards: two rounds or one each.
            assert!(n == 4 || n == 2, "shard {i} of 4 gets {n} cells");
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
    fn shards_take_whole_rounds_when_there_are_enough() {
        // 2 groups x 2 repetitions = 4 rounds over 4 shards: one round (both allocators) each.
        for i in 1..=4 {
            let parts = matrix(2, &ids(&["a", "b"]), 2, Some(Shard { index: i, count: 4 }));
            let cells: Vec<&Cell> = parts.iter().flat_map(|p| &p.cells).collect();
            assert_eq!(cells.len(), 2, "shard {i}");
            assert_ne!(cells[0].allocator, cells[1].allocator);
            assert_eq!(cells[0].repetition, cells[1].repetition);
        }
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
