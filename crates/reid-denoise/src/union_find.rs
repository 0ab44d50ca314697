//! Disjoint sets with path halving and union by size.

/// Disjoint sets over `0..n`.
#[derive(Debug, Clone, Default)]
pub struct UnionFind {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl UnionFind {
    /// `n` singleton sets.
    pub fn new(n: usize) -> Self {
        Self {
            parent: (0..n as u32).collect(),
            size: vec![1; n],
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.parent.len()
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.parent.is_empty()
    }

    /// Adds a new singleton set and returns its element.
    pub fn push(&mut self) -> usize {
        let i = self.parent.len();
        self.parent.push(i as u32);
        self.size.push(1);
        i
    }

    /// The representative of `x`'s set.
    pub fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] as usize != x {
            let grand = self.parent[self.parent[x] as usize];
            self.parent[x] = grand;
            x = grand as usize;
        }
        x
    }

    /// Joins the sets of `a` and `b`; returns the new root and the absorbed
    /// root, or `None` when they were already one set.
    pub fn union(&mut self, a: usize, b: usize) -> Option<(usize, usize)> {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return None;
        }
        let (big, small) = if self.size[ra] >= self.size[rb] {
            (ra, rb)
        } else {
            (rb, ra)
        };
        self.parent[small] = big as u32;
        self.size[big] += self.size[small];
        Some((big, small))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_join_transitively() {
        let mut uf = UnionFind::new(6);
        assert!(uf.union(0, 1).is_some());
        assert!(uf.union(2, 3).is_some());
        assert!(uf.union(1, 3).is_some());
        assert!(uf.union(0, 2).is_none());
        assert_eq!(uf.find(3), uf.find(0));
        assert_ne!(uf.find(4), uf.find(0));
        let e = uf.push();
        assert_eq!(e, 6);
        assert_eq!(uf.find(6), 6);
    }
}
