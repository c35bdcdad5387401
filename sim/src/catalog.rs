//! The served form of a source: posts sorted newest first, a tag table with ids, counts
//! and categories, and the searches the three tag APIs share.

use std::collections::{BTreeMap, HashMap};

use crate::post::Post;
use crate::world::{SimFamily, SimSource};

/// A tag as the tag APIs list it.
#[derive(Debug, Clone)]
pub(crate) struct TagEntry {
    pub id: u64,
    pub name: String,
    pub category: u8,
    pub count: u64,
}

/// A Danbooru tag alias as `/tag_aliases.json` lists it.
#[derive(Debug, Clone)]
pub(crate) struct AliasEntry {
    pub id: u64,
    pub antecedent: String,
    pub consequent: String,
}

/// How a tag listing is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TagOrder {
    CountDesc,
    CountAsc,
    NameAsc,
    NameDesc,
    /// Newest tag first.
    IdDesc,
    IdAsc,
}

/// Everything the server needs to answer for one source; immutable once built.
#[derive(Debug)]
pub(crate) struct SourceData {
    pub id: String,
    pub family: SimFamily,
    /// Newest (highest id) first.
    pub posts: Vec<Post>,
    pub tags: Vec<TagEntry>,
    tag_index: HashMap<String, usize>,
    pub aliases: Vec<AliasEntry>,
    pub credentials: Option<(String, String)>,
    pub max_limit: u32,
    pub max_depth: Option<usize>,
    pub tag_format_xml: bool,
    pub relative_urls: bool,
    pub reduced_fields: bool,
}

/// Tag ids start here so they look like ids of a long-lived site.
const FIRST_TAG_ID: u64 = 400_001;

impl SourceData {
    /// Freezes a built source: sorts posts, counts tags and numbers tags and aliases.
    pub fn build(source: SimSource) -> SourceData {
        let mut posts = source.posts;
        posts.sort_by_key(|p| std::cmp::Reverse(p.id));
        let tags = tag_table(&source.declared, &source.aliases, &posts);
        let tag_index = tags
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        let aliases = (source.aliases.into_iter().enumerate())
            .map(|(i, (antecedent, consequent))| AliasEntry {
                id: 30_001 + i as u64,
                antecedent,
                consequent,
            })
            .collect();
        SourceData {
            id: source.id,
            family: source.family,
            posts,
            tags,
            tag_index,
            aliases,
            credentials: source.credentials,
            max_limit: source.max_limit,
            max_depth: source.max_depth,
            tag_format_xml: source.tag_format_xml,
            relative_urls: source.relative_urls,
            reduced_fields: source.reduced_fields,
        }
    }

    /// The category of a tag; undeclared tags are general (0).
    pub fn category(&self, name: &str) -> u8 {
        self.tag_index
            .get(name)
            .map_or(0, |&i| self.tags[i].category)
    }

    /// The active alias whose antecedent is `name`, if any.
    pub fn alias_of(&self, name: &str) -> Option<&str> {
        let alias = self.aliases.iter().find(|a| a.antecedent == name)?;
        Some(&alias.consequent)
    }

    /// The tags `keep` accepts, in `order`; ties fall back to name so listings are stable.
    pub fn select_tags(&self, keep: impl Fn(&TagEntry) -> bool, order: TagOrder) -> Vec<&TagEntry> {
        let mut found: Vec<&TagEntry> = self.tags.iter().filter(|t| keep(t)).collect();
        found.sort_by(|a, b| match order {
            TagOrder::CountDesc => b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)),
            TagOrder::CountAsc => a.count.cmp(&b.count).then_with(|| a.name.cmp(&b.name)),
            TagOrder::NameAsc => a.name.cmp(&b.name),
            TagOrder::NameDesc => b.name.cmp(&a.name),
            TagOrder::IdDesc => b.id.cmp(&a.id),
            TagOrder::IdAsc => a.id.cmp(&b.id),
        });
        found
    }
}

/// Declared tags first, in declaration order, then every other tag the posts use (by
/// name), then alias antecedents, which exist on Danbooru as empty tags.
fn tag_table(
    declared: &[(String, crate::world::DeclaredTag)],
    aliases: &[(String, String)],
    posts: &[Post],
) -> Vec<TagEntry> {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for tag in posts.iter().flat_map(|p| p.tags.iter()) {
        *counts.entry(tag).or_default() += 1;
    }
    let mut rows: Vec<(String, u8, u64)> = declared
        .iter()
        .map(|(name, d)| {
            let served = counts.remove(name.as_str()).unwrap_or(0);
            (name.clone(), d.category, d.post_count.unwrap_or(served))
        })
        .collect();
    rows.extend(counts.into_iter().map(|(name, n)| (name.to_owned(), 0, n)));
    for (antecedent, consequent) in aliases {
        if !rows.iter().any(|r| &r.0 == antecedent) {
            let category = rows.iter().find(|r| &r.0 == consequent).map_or(0, |r| r.1);
            rows.push((antecedent.clone(), category, 0));
        }
    }
    (rows.into_iter().enumerate())
        .map(|(i, (name, category, count))| TagEntry {
            id: FIRST_TAG_ID + i as u64,
            name,
            category,
            count,
        })
        .collect()
}

/// Matches `text` against a pattern where `many` stands for any run of characters and
/// `one`, if given, for exactly one; everything else matches itself, case-insensitively.
pub(crate) fn wildcard_match(pattern: &str, text: &str, many: char, one: Option<char>) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // Where the last `many` was and which text position it currently swallows up to.
    let mut backtrack: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == many {
            backtrack = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == t[ti] || Some(p[pi]) == one) {
            pi += 1;
            ti += 1;
        } else if let Some((star, from)) = backtrack {
            pi = star + 1;
            ti = from + 1;
            backtrack = Some((star, from + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == many)
}

/// Danbooru's and Moebooru's `*` glob.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    wildcard_match(pattern, text, '*', None)
}

/// SQL `LIKE` as Gelbooru's `name_pattern` uses it: `%` any run, `_` one character.
pub(crate) fn like_match(pattern: &str, text: &str) -> bool {
    wildcard_match(pattern, text, '%', Some('_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_and_like_follow_their_wildcards() {
        assert!(glob_match("*anya*", "anya_(spy_x_family)"));
        assert!(glob_match("anya*", "Anya_forger"));
        assert!(!glob_match("anya", "anya_forger"));
        assert!(glob_match("*_(spy_x_family)", "anya_(spy_x_family)"));
        assert!(like_match("%anya%", "forger_anya"));
        assert!(like_match("any_", "anya"));
        assert!(!like_match("any_", "anyaa"));
        assert!(like_match("a%a%y", "anya_yxy"));
    }
}
