//! Post search queries: the `tags` parameter parsed into terms, in each family's dialect,
//! with the filters, order and tag-limit arithmetic the real servers apply.
//!
//! Supported: AND by whitespace, `-tag`, `*` wildcards, OR groups (`~a ~b` on Danbooru and
//! Moebooru, `a or b` and `( a or b )` on Danbooru, `{a ~ b}` on Gelbooru, `( a ~ b )` on
//! Gelbooru 0.2), and the metatags `rating:`, `status:`, `id:`, `score:`, `width:`,
//! `height:`, `md5:`, `order:`/`sort:` (id and score) and `limit:`. Every other known
//! metatag is accepted and filters nothing; OR syntax of another family is read as plain
//! tags, which match nothing, as on the real sites.

use crate::catalog::glob_match;
use crate::post::{Post, Rating};
use crate::world::SimFamily;

/// Metatag names any of the families knows; a `key:value` term whose key is not here is
/// a plain tag (tags such as `re:zero` contain colons).
const METATAGS: &[&str] = &[
    "rating",
    "status",
    "id",
    "score",
    "md5",
    "order",
    "sort",
    "limit",
    "holds",
    "pending",
    "shown",
    "width",
    "height",
    "user",
    "fav",
    "pool",
    "parent",
    "child",
    "date",
    "age",
    "is",
    "has",
    "source",
    "filesize",
    "filetype",
    "tagcount",
    "favcount",
    "mpixels",
    "ratio",
    "duration",
    "embedded",
    "upvote",
    "upvotes",
    "downvote",
    "downvotes",
    "pixiv",
    "pixiv_id",
    "ordfav",
    "ordpool",
    "random",
    "approver",
    "commenter",
    "noter",
    "vote",
];

/// Danbooru metatags that do not count toward the tag limit (`order:` does count).
const DANBOORU_FREE: &[&str] = &[
    "status",
    "rating",
    "limit",
    "is",
    "id",
    "date",
    "age",
    "filesize",
    "filetype",
    "parent",
    "child",
    "md5",
    "width",
    "height",
    "duration",
    "mpixels",
    "ratio",
    "score",
    "upvote",
    "downvotes",
    "favcount",
    "embedded",
    "tagcount",
    "pixiv_id",
    "pixiv",
];

/// The order posts come back in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    IdDesc,
    IdAsc,
    ScoreDesc,
    ScoreAsc,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    Tag {
        name: String,
        negated: bool,
    },
    Any(Vec<String>),
    Meta {
        key: String,
        value: String,
        negated: bool,
    },
}

/// A parsed `tags` parameter.
#[derive(Debug, Clone)]
pub(crate) struct Query {
    family: SimFamily,
    terms: Vec<Term>,
    /// The `limit:` metatag, which Danbooru lets set the page size.
    pub limit: Option<u32>,
    pub order: Order,
}

impl Query {
    /// Parses a `tags` parameter in `family`'s dialect.
    pub fn parse(tags: &str, family: SimFamily) -> Query {
        let tokens: Vec<&str> = tags.split_whitespace().collect();
        let mut terms = group_terms(&tokens, family);
        let tilde: Vec<String> = take_tilde_members(&mut terms, family);
        if !tilde.is_empty() {
            terms.push(Term::Any(tilde));
        }
        let mut query = Query {
            family,
            terms: Vec::new(),
            limit: None,
            order: Order::IdDesc,
        };
        for term in terms {
            query.absorb(term);
        }
        query
    }

    /// Takes `limit:` and `order:`/`sort:` out of the filters; they still count toward
    /// Danbooru's limit, so `order:` stays listed.
    fn absorb(&mut self, term: Term) {
        if let Term::Meta {
            key,
            value,
            negated: false,
        } = &term
        {
            match key.as_str() {
                "limit" => self.limit = value.parse().ok(),
                "order" | "sort" => self.order = order_of(value).unwrap_or(self.order),
                _ => {}
            }
        }
        self.terms.push(term);
    }

    /// Replaces aliased tag names by their consequents, as Danbooru does before searching.
    pub fn resolve_aliases<'a>(&mut self, alias_of: impl Fn(&str) -> Option<&'a str>) {
        for term in &mut self.terms {
            match term {
                Term::Tag { name, .. } => resolve(name, &alias_of),
                Term::Any(members) => members.iter_mut().for_each(|m| resolve(m, &alias_of)),
                Term::Meta { .. } => {}
            }
        }
    }

    /// Terms Danbooru counts toward its tag limit: tags, negated tags, OR members and
    /// metatags outside the free list.
    pub fn danbooru_cost(&self) -> usize {
        self.terms
            .iter()
            .map(|term| match term {
                Term::Tag { .. } => 1,
                Term::Any(members) => members.len(),
                Term::Meta { key, .. } => usize::from(!DANBOORU_FREE.contains(&key.as_str())),
            })
            .sum()
    }

    /// Terms Moebooru counts toward its limit of six: plain tags only.
    pub fn moebooru_cost(&self) -> usize {
        self.terms
            .iter()
            .map(|term| match term {
                Term::Tag { .. } => 1,
                Term::Any(members) => members.len(),
                Term::Meta { .. } => 0,
            })
            .sum()
    }

    /// Whether a post satisfies every term.
    pub fn matches(&self, post: &Post) -> bool {
        self.terms.iter().all(|term| self.term_matches(term, post))
    }

    fn term_matches(&self, term: &Term, post: &Post) -> bool {
        match term {
            Term::Tag { name, negated } => tag_matches(post, name) != *negated,
            Term::Any(members) => members.iter().any(|m| tag_matches(post, m)),
            Term::Meta {
                key,
                value,
                negated,
            } => self
                .meta_matches(key, value, post)
                .is_none_or(|hit| hit != *negated),
        }
    }

    /// `None` when the metatag filters nothing.
    fn meta_matches(&self, key: &str, value: &str, post: &Post) -> Option<bool> {
        match key {
            "rating" => Some(
                post.rating
                    .is_some_and(|r| ratings(value, self.family).contains(&r)),
            ),
            "status" => status_matches(value, post.deleted),
            "id" => Some(numeric_matches(value, post.id as i64)),
            "score" => Some(numeric_matches(value, post.score)),
            "width" => Some(numeric_matches(value, i64::from(post.width))),
            "height" => Some(numeric_matches(value, i64::from(post.height))),
            "md5" => Some(
                post.md5
                    .as_deref()
                    .is_some_and(|m| m.eq_ignore_ascii_case(value)),
            ),
            _ => None,
        }
    }

    /// The posts of `posts` (newest first) that match, in the query's order.
    pub fn select<'a>(&self, posts: &'a [Post]) -> Vec<&'a Post> {
        let mut found: Vec<&Post> = posts.iter().filter(|p| self.matches(p)).collect();
        match self.order {
            Order::IdDesc => {}
            Order::IdAsc => found.reverse(),
            Order::ScoreDesc => found.sort_by(|a, b| b.score.cmp(&a.score).then(b.id.cmp(&a.id))),
            Order::ScoreAsc => found.sort_by(|a, b| a.score.cmp(&b.score).then(b.id.cmp(&a.id))),
        }
        found
    }
}

fn resolve<'a>(name: &mut String, alias_of: &impl Fn(&str) -> Option<&'a str>) {
    if let Some(consequent) = alias_of(name) {
        *name = consequent.to_owned();
    }
}

fn tag_matches(post: &Post, name: &str) -> bool {
    if name.contains('*') {
        post.tags.iter().any(|t| glob_match(name, t))
    } else {
        post.has_tag(name)
    }
}

/// Turns tokens into terms, folding the family's bracketed and infix OR forms.
fn group_terms(tokens: &[&str], family: SimFamily) -> Vec<Term> {
    let brackets = match family {
        SimFamily::Gelbooru => Some(('{', '}', "~")),
        SimFamily::GelbooruV02 => Some(('(', ')', "~")),
        SimFamily::Danbooru => Some(('(', ')', "or")),
        SimFamily::Moebooru => None,
    };
    let mut terms = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let opens = brackets.filter(|(open, ..)| tokens[i].starts_with(*open));
        if let Some((open, close, separator)) = opens {
            let end = (i..tokens.len()).find(|&j| tokens[j].ends_with(close));
            let end = end.unwrap_or(tokens.len() - 1);
            terms.extend(bracket_group(&tokens[i..=end], open, close, separator));
            i = end + 1;
        } else if family == SimFamily::Danbooru && tokens[i] == "or" && i + 1 < tokens.len() {
            join_or(&mut terms, tokens[i + 1]);
            i += 2;
        } else {
            terms.push(term_of(tokens[i]));
            i += 1;
        }
    }
    terms
}

/// `{a ~ b}` or `( a ~ b )`: an OR of its members; without a separator, plain AND terms.
fn bracket_group(tokens: &[&str], open: char, close: char, separator: &str) -> Vec<Term> {
    let inner: Vec<&str> = tokens
        .iter()
        .map(|t| t.trim_start_matches(open).trim_end_matches(close))
        .filter(|t| !t.is_empty())
        .collect();
    if !inner.contains(&separator) {
        return inner.into_iter().map(term_of).collect();
    }
    let members = inner
        .into_iter()
        .filter(|t| *t != separator)
        .map(str::to_owned)
        .collect();
    vec![Term::Any(members)]
}

/// Danbooru's infix `a or b`: joins `next` to the term before it.
fn join_or(terms: &mut Vec<Term>, next: &str) {
    let joined = match terms.pop() {
        Some(Term::Tag {
            name,
            negated: false,
        }) => vec![name, next.to_owned()],
        Some(Term::Any(mut members)) => {
            members.push(next.to_owned());
            members
        }
        Some(other) => {
            terms.push(other);
            vec![next.to_owned()]
        }
        None => vec![next.to_owned()],
    };
    terms.push(Term::Any(joined));
}

/// Moves the `~tag` terms of Danbooru and Moebooru into one OR group.
fn take_tilde_members(terms: &mut Vec<Term>, family: SimFamily) -> Vec<String> {
    if !matches!(family, SimFamily::Danbooru | SimFamily::Moebooru) {
        return Vec::new();
    }
    let mut members = Vec::new();
    terms.retain(|term| match term {
        Term::Tag {
            name,
            negated: false,
        } if name.len() > 1 && name.starts_with('~') => {
            members.push(name[1..].to_owned());
            false
        }
        _ => true,
    });
    members
}

fn term_of(token: &str) -> Term {
    let (negated, body) = match token.strip_prefix('-') {
        Some(rest) if !rest.is_empty() => (true, rest),
        _ => (false, token),
    };
    if let Some((key, value)) = body.split_once(':') {
        let key = key.to_ascii_lowercase();
        if METATAGS.contains(&key.as_str()) {
            let value = value.to_owned();
            return Term::Meta {
                key,
                value,
                negated,
            };
        }
    }
    Term::Tag {
        name: body.to_owned(),
        negated,
    }
}

fn order_of(value: &str) -> Option<Order> {
    match value.to_ascii_lowercase().as_str() {
        "id" | "id_asc" | "id:asc" => Some(Order::IdAsc),
        "id_desc" | "id:desc" => Some(Order::IdDesc),
        "score" | "score_desc" | "score:desc" => Some(Order::ScoreDesc),
        "score_asc" | "score:asc" => Some(Order::ScoreAsc),
        _ => None,
    }
}

/// The ratings a `rating:` value names; `s`/`safe` is Danbooru's sensitive there and the
/// old all-ages "safe" (general and sensitive) elsewhere.
fn ratings(value: &str, family: SimFamily) -> Vec<Rating> {
    let old_safe = family != SimFamily::Danbooru;
    value
        .split(',')
        .flat_map(|v| match v.to_ascii_lowercase().as_str() {
            "g" | "general" => vec![Rating::General],
            "s" | "safe" if old_safe => vec![Rating::General, Rating::Sensitive],
            "s" | "safe" | "sensitive" => vec![Rating::Sensitive],
            "sfw" => vec![Rating::General, Rating::Sensitive],
            "nsfw" => vec![Rating::Questionable, Rating::Explicit],
            "q" | "questionable" => vec![Rating::Questionable],
            "e" | "explicit" => vec![Rating::Explicit],
            _ => Vec::new(),
        })
        .collect()
}

fn status_matches(value: &str, deleted: bool) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "deleted" => Some(deleted),
        "active" => Some(!deleted),
        _ => None,
    }
}

/// Numeric metatag values: `N`, `<N`, `<=N`, `>N`, `>=N`, `A..B`, `..B`, `A..`.
fn numeric_matches(value: &str, actual: i64) -> bool {
    let num = |s: &str| s.trim().parse::<i64>().ok();
    let check = |bound: Option<i64>, ok: fn(i64, i64) -> bool| bound.is_some_and(|b| ok(actual, b));
    if let Some(rest) = value.strip_prefix("<=") {
        check(num(rest), |a, b| a <= b)
    } else if let Some(rest) = value.strip_prefix(">=") {
        check(num(rest), |a, b| a >= b)
    } else if let Some(rest) = value.strip_prefix('<') {
        check(num(rest), |a, b| a < b)
    } else if let Some(rest) = value.strip_prefix('>') {
        check(num(rest), |a, b| a > b)
    } else if let Some((low, high)) = value.split_once("..") {
        let low_ok = low.is_empty() || check(num(low), |a, b| a >= b);
        low_ok && (high.is_empty() || check(num(high), |a, b| a <= b))
    } else {
        check(num(value), |a, b| a == b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::post::PostSpec;

    fn post(id: u64, tags: &[&str], rating: Rating) -> Post {
        let spec = PostSpec {
            rating,
            score: id as i64,
            ..PostSpec::for_image(id)
        };
        Post::generated(id, id, tags, spec)
    }

    #[test]
    fn danbooru_counts_order_but_not_free_metatags() {
        let q = Query::parse(
            "anya_(spy_x_family) rating:g -status:deleted",
            SimFamily::Danbooru,
        );
        assert_eq!(q.danbooru_cost(), 1);
        let q = Query::parse(
            "anya_(spy_x_family) spy_x_family order:score",
            SimFamily::Danbooru,
        );
        assert_eq!(q.danbooru_cost(), 3);
        assert_eq!(q.order, Order::ScoreDesc);
        let q = Query::parse("a b c d e f holds:false", SimFamily::Moebooru);
        assert_eq!(q.moebooru_cost(), 6);
    }

    #[test]
    fn filters_by_tags_negation_rating_and_id() {
        let p = post(10, &["anya", "solo"], Rating::Questionable);
        let d = SimFamily::Danbooru;
        assert!(Query::parse("anya -smile rating:q,e id:<11", d).matches(&p));
        assert!(!Query::parse("anya -solo", d).matches(&p));
        assert!(!Query::parse("anya -rating:q", d).matches(&p));
        assert!(!Query::parse("id:>=11", d).matches(&p));
        assert!(Query::parse("an*", d).matches(&p));
        assert!(
            Query::parse("rating:safe", SimFamily::Moebooru).matches(&post(
                1,
                &[],
                Rating::Sensitive
            ))
        );
    }

    #[test]
    fn or_groups_follow_each_dialect() {
        let p = post(3, &["anya_forger"], Rating::General);
        let hit = |q: &str, f| Query::parse(q, f).matches(&p);
        assert!(hit("~yor_forger ~anya_forger", SimFamily::Moebooru));
        assert!(hit("{yor_briar ~ anya_forger}", SimFamily::Gelbooru));
        assert!(hit("( yor_briar ~ anya_forger )", SimFamily::GelbooruV02));
        assert!(hit("yor_briar or anya_forger", SimFamily::Danbooru));
        assert!(!hit("{yor_briar ~ anya_forger}", SimFamily::GelbooruV02));
    }
}
