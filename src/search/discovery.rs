//! Tag discovery: finding the tags a source uses for a character.
//!
//! Sites name one character differently (`anya_(spy_x_family)` on Danbooru, `anya_forger`
//! on Yande.re), names collide across works, and cosplay or costume variants exist. For each
//! source the service asks the site's tag API for tags containing the character's first and
//! last name words (most used first), and on Danbooru for aliases of the full name, then
//! keeps the tags that are the character's own: one site may spell her two ways. See the
//! README's "Tag discovery".
//!
//! The user's text is only ever used inside these look-ups, as a literal word with every
//! wildcard removed; a post search uses only a tag the upstream itself returned.

use std::cmp::Reverse;
use std::collections::HashSet;

use crate::model::{TagCandidate, TagCategory};
use crate::sources::UpstreamError;
use crate::sources::driver::{RequestKind, Upstream};

/// A character and series, split into the words discovery compares tags against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NameQuery {
    /// The character's name words, lowercase, wildcards removed (`["anya", "forger"]`).
    words: Vec<String>,
    /// The series squeezed to lowercase letters and digits (`spyxfamily`), if given.
    series_key: Option<String>,
    /// The series as a tag would spell it (`spy_x_family`), if given.
    series_tag: Option<String>,
}

/// What discovery found on one source.
#[derive(Debug, Clone, PartialEq)]
pub struct Discovery {
    /// The tags to search, best first; empty when nothing fits.
    pub chosen: Vec<TagCandidate>,
    /// Every candidate seen, best fit first.
    pub candidates: Vec<TagCandidate>,
}

/// How well a tag fits the character; see [`Fit::tier`] for how fits rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fit {
    /// Part of the name without any qualifier (`anya` for "Anya Forger").
    Weak,
    /// The name with a qualifier naming some work, when no series was given.
    Qualified,
    /// A one-word name without any qualifier (`anya` for "Anya"): the name, but namesakes
    /// from other works share such a tag, so a series-qualified one beats it.
    Bare,
    /// Part of the name qualified by the given series (`anya_(spy_x_family)`).
    SeriesPart,
    /// The full name of several words in any order (`anya_forger`, `forger_anya`), alone or
    /// qualified by the given series; or a one-word name qualified by the series.
    FullName,
    /// The site's own alias of the full name points to it.
    Alias,
}

impl Fit {
    /// The rank of the fit, higher is better. A full name and a series-qualified part of it
    /// tell equally well that the tag is the character's, so they share a rank.
    fn tier(self) -> u8 {
        match self {
            Fit::Weak => 0,
            Fit::Qualified => 1,
            Fit::Bare => 2,
            Fit::SeriesPart | Fit::FullName => 3,
            Fit::Alias => 4,
        }
    }
}

impl NameQuery {
    /// Splits `character` and `series` into comparable words.
    pub fn new(character: &str, series: Option<&str>) -> NameQuery {
        let words = tag_words(character);
        let series_key = series.map(squeeze).filter(|key| !key.is_empty());
        let series_tag = series
            .map(|series| tag_words(series).join("_"))
            .filter(|tag| !tag.is_empty());
        NameQuery {
            words,
            series_key,
            series_tag,
        }
    }

    /// The literal words to look tags up by: the first and the last name word.
    pub fn lookup_words(&self) -> Vec<&str> {
        let mut words: Vec<&str> = Vec::new();
        for word in [self.words.first(), self.words.last()]
            .into_iter()
            .flatten()
        {
            if !words.contains(&word.as_str()) {
                words.push(word);
            }
        }
        words
    }

    /// The full name as a tag (`anya_forger`), for alias look-ups.
    pub fn full_tag(&self) -> Option<String> {
        (self.words.len() > 1).then(|| self.words.join("_"))
    }

    /// Whether the name has any word left after removing wildcards and punctuation.
    pub fn is_searchable(&self) -> bool {
        !self.words.is_empty()
    }
}

/// Lowercase words split on white space and underscores, with wildcard characters removed.
fn tag_words(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == '_')
        .map(|word| {
            word.chars()
                .filter(|c| !matches!(c, '*' | '%' | '?' | '\\') && !c.is_control())
                .flat_map(char::to_lowercase)
                .collect::<String>()
        })
        .filter(|word| !word.is_empty())
        .collect()
}

/// Lowercase letters and digits only, so `Spy x Family` and `spy_x_family` compare equal.
fn squeeze(text: &str) -> String {
    text.chars()
        .map(|c| if c == '×' { 'x' } else { c })
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Splits `anya_(spy_x_family)` into `anya` and its qualifiers `["spy_x_family"]`; nested
/// variants such as `asuna_(bunny)_(blue_archive)` give every qualifier.
fn split_qualifiers(name: &str) -> (&str, Vec<&str>) {
    let Some(open) = name.find("_(") else {
        return (name, Vec::new());
    };
    let qualifiers = name[open..]
        .split(['(', ')'])
        .map(|part| part.trim_matches('_'))
        .filter(|part| !part.is_empty())
        .collect();
    (&name[..open], qualifiers)
}

impl NameQuery {
    fn fit(&self, tag: &TagCandidate, aliased: bool) -> Option<Fit> {
        let name = tag.name.to_lowercase();
        let (base, qualifiers) = split_qualifiers(&name);
        if qualifiers.iter().any(|q| q.contains("cosplay")) {
            return None;
        }
        // The series tag itself, unless the site files it as a character: a work may be
        // named like its hero (`kirby`, a character, beside the copyright `kirby_(series)`).
        let series_itself = self.series_tag.as_deref() == Some(name.as_str());
        if series_itself && tag.category != TagCategory::Character {
            return None;
        }
        if !matches!(
            tag.category,
            TagCategory::Character | TagCategory::General | TagCategory::Other
        ) {
            return None;
        }
        if aliased {
            return Some(Fit::Alias);
        }
        if tag.post_count == 0 {
            return None;
        }
        self.name_fit(base, &qualifiers)
    }

    fn name_fit(&self, base: &str, qualifiers: &[&str]) -> Option<Fit> {
        let base_words: Vec<&str> = base.split('_').filter(|w| !w.is_empty()).collect();
        if base_words.is_empty() || !base_words.iter().all(|w| self.words.iter().any(|n| n == w)) {
            return None;
        }
        let full = base_words.len() == self.words.len()
            && self.words.iter().all(|n| base_words.contains(&n.as_str()));
        let (series, foreign): (Vec<&str>, Vec<&str>) =
            qualifiers.iter().partition(|q| self.names_series(q));
        if !foreign.is_empty() {
            // A qualifier naming another work is another character, unless no series was
            // given and it is the only qualifier: then it is one of the namesakes.
            let namesake = self.series_key.is_none() && foreign.len() == 1 && series.is_empty();
            return namesake.then_some(Fit::Qualified);
        }
        Some(match (full, series.is_empty()) {
            (true, false) => Fit::FullName,
            (true, true) if base_words.len() > 1 => Fit::FullName,
            (true, true) => Fit::Bare,
            (false, false) => Fit::SeriesPart,
            (false, true) => Fit::Weak,
        })
    }

    fn names_series(&self, qualifier: &str) -> bool {
        let Some(series) = &self.series_key else {
            return false;
        };
        let qualifier = squeeze(qualifier);
        !qualifier.is_empty()
            && (series.contains(&qualifier) || qualifier.contains(series.as_str()))
    }
}

/// Most tags searched on one source.
///
/// A site rarely spells one character more than two ways (TBIB has both
/// `anya_(spy_x_family)` and `forger_anya`), and each chosen tag is paged on its own, up to
/// `max_pages` pages, so the cap bounds what a tag wrongly taken for the character's can
/// cost the source's rate limit.
pub const MAX_CHOSEN_TAGS: usize = 3;

/// Ranks `candidates` for `query` and chooses the tags that are the character's own.
///
/// `aliases` are tags the site says the full name is an alias of. Every alias target and
/// full-name tag is chosen, and the best tag qualifying part of the name by the series, at
/// most [`MAX_CHOSEN_TAGS`] in all: two parts of a name qualified by the same work
/// (`asuna_(sao)`, `yuuki_(sao)`) are more likely two of its characters than one. Only when
/// none of those exists is the single best lesser fit chosen: a one-word name alone, a
/// namesake qualified by some work, or part of the name alone, the last only as a character
/// tag.
pub fn choose(query: &NameQuery, candidates: Vec<TagCandidate>, aliases: &[String]) -> Discovery {
    let mut scored: Vec<(Option<Fit>, TagCandidate)> = candidates
        .into_iter()
        .map(|tag| (query.fit(&tag, aliases.contains(&tag.name)), tag))
        .collect();
    scored.sort_by_key(|(fit, tag)| {
        (
            Reverse(fit.map(Fit::tier)),
            tag.category != TagCategory::Character,
            Reverse(tag.post_count),
            tag.name.clone(),
        )
    });
    let mut chosen = own_tags(&scored);
    if chosen.is_empty() {
        chosen.extend(best_lesser_fit(&scored));
    }
    Discovery {
        chosen,
        candidates: scored.into_iter().map(|(_, tag)| tag).collect(),
    }
}

/// The tags among ranked `scored` that are the character's own, best first.
fn own_tags(scored: &[(Option<Fit>, TagCandidate)]) -> Vec<TagCandidate> {
    let mut chosen = Vec::new();
    let mut series_part_taken = false;
    for (fit, tag) in scored {
        let take = match fit {
            Some(Fit::Alias | Fit::FullName) => true,
            Some(Fit::SeriesPart) => !series_part_taken,
            _ => false,
        };
        if !take {
            continue;
        }
        series_part_taken |= *fit == Some(Fit::SeriesPart);
        chosen.push(tag.clone());
        if chosen.len() == MAX_CHOSEN_TAGS {
            break;
        }
    }
    chosen
}

/// The best of ranked `scored`, if it fits at all and is not a part of the name that the
/// site does not call a character.
fn best_lesser_fit(scored: &[(Option<Fit>, TagCandidate)]) -> Option<TagCandidate> {
    let (fit, tag) = scored.first()?;
    match fit {
        Some(Fit::Weak) if tag.category != TagCategory::Character => None,
        Some(_) => Some(tag.clone()),
        None => None,
    }
}

/// Looks up candidate tags for `query` on `site` and chooses the character's tags.
///
/// At most `limit` candidates are asked for per look-up word and kept in the answer.
pub async fn discover(
    upstream: Upstream<'_>,
    query: &NameQuery,
    limit: u32,
) -> Result<Discovery, UpstreamError> {
    // The look-ups go out together; the source's limiter still spaces them, but no one
    // waits for another's round trip.
    let words = query.lookup_words();
    let lookups = words.iter().map(|word| lookup(upstream, word, limit));
    let (found, aliases) =
        futures::join!(futures::future::join_all(lookups), aliases(upstream, query));
    let aliases = aliases?;
    let found = root_cause(found)?;
    let mut candidates: Vec<TagCandidate> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for tag in found.into_iter().flatten() {
        if seen.insert(tag.name.clone()) {
            candidates.push(tag);
        }
    }
    for alias in aliases.iter().filter(|alias| !seen.contains(*alias)) {
        let found = lookup(upstream, alias, limit).await?;
        candidates.extend(found.into_iter().filter(|tag| &tag.name == alias));
    }
    let mut discovery = choose(query, candidates, &aliases);
    discovery.candidates.truncate(limit as usize);
    Ok(discovery)
}

/// Every look-up's tags, or the error that explains the failure best: when several fail
/// together, one may have been refused only because the others had just paused the source.
fn root_cause(
    results: Vec<Result<Vec<TagCandidate>, UpstreamError>>,
) -> Result<Vec<Vec<TagCandidate>>, UpstreamError> {
    let mut found = Vec::with_capacity(results.len());
    let mut refusal = None;
    for result in results {
        match result {
            Ok(tags) => found.push(tags),
            Err(UpstreamError::CircuitOpen { .. }) if refusal.is_none() => refusal = result.err(),
            Err(UpstreamError::CircuitOpen { .. }) => {}
            Err(cause) => return Err(cause),
        }
    }
    match refusal {
        Some(refusal) => Err(refusal),
        None => Ok(found),
    }
}

/// Tags containing `word` on the source, most used first.
async fn lookup(
    upstream: Upstream<'_>,
    word: &str,
    limit: u32,
) -> Result<Vec<TagCandidate>, UpstreamError> {
    let url = upstream.site.tags_url(word, limit);
    upstream
        .get_parsed(url, RequestKind::Tags, |body| {
            upstream.site.parse_tags(body)
        })
        .await
}

async fn aliases(upstream: Upstream<'_>, query: &NameQuery) -> Result<Vec<String>, UpstreamError> {
    let Some(full) = query.full_tag() else {
        return Ok(Vec::new());
    };
    let Some(url) = upstream.site.aliases_url(&full) else {
        return Ok(Vec::new());
    };
    upstream
        .get_parsed(url, RequestKind::Aliases, |body| {
            upstream.site.parse_aliases(body)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(name: &str, post_count: u64, category: TagCategory) -> TagCandidate {
        TagCandidate {
            name: name.into(),
            post_count,
            category,
        }
    }

    fn chosen(query: &NameQuery, candidates: Vec<TagCandidate>) -> Option<String> {
        choose(query, candidates, &[])
            .chosen
            .first()
            .map(|t| t.name.clone())
    }

    fn all_chosen(query: &NameQuery, candidates: Vec<TagCandidate>) -> Vec<String> {
        let chosen = choose(query, candidates, &[]).chosen;
        chosen.into_iter().map(|t| t.name).collect()
    }

    fn anya_candidates() -> Vec<TagCandidate> {
        vec![
            tag("anya_(other_work)", 9000, TagCategory::Character),
            tag("anya_melfissa", 5000, TagCategory::Character),
            tag("spy_x_family", 30000, TagCategory::Copyright),
            tag("anya_(spy_x_family)_(cosplay)", 400, TagCategory::Character),
            tag("anya_(spy_x_family)", 8000, TagCategory::Character),
            tag("loid_forger", 3000, TagCategory::Character),
            tag("anya_(spy_x_family)_(mascot)", 30, TagCategory::Character),
        ]
    }

    #[test]
    fn the_series_qualified_tag_wins_over_colliding_names_and_variants() {
        let query = NameQuery::new("Anya Forger", Some("Spy x Family"));
        assert_eq!(
            chosen(&query, anya_candidates()).as_deref(),
            Some("anya_(spy_x_family)")
        );
    }

    #[test]
    fn the_full_name_wins_where_the_site_uses_it() {
        let query = NameQuery::new("anya  forger", Some("SPY×FAMILY"));
        assert!(query.names_series("spy_x_family"));
        let candidates = vec![
            tag("anya_forger_(cosplay)", 20, TagCategory::Character),
            tag("anya_forger", 300, TagCategory::Character),
            tag("anya_(other_work)", 900, TagCategory::Character),
        ];
        assert_eq!(chosen(&query, candidates).as_deref(), Some("anya_forger"));
    }

    #[test]
    fn every_own_tag_of_a_site_is_chosen_and_nothing_else() {
        let query = NameQuery::new("Anya Forger", Some("Spy x Family"));
        let mut candidates = anya_candidates();
        candidates.extend([
            tag("anya", 20_000, TagCategory::Character),
            tag("forger_anya", 12, TagCategory::Character),
            tag("yor_forger", 700, TagCategory::Character),
        ]);
        assert_eq!(
            all_chosen(&query, candidates),
            ["anya_(spy_x_family)", "forger_anya"]
        );
    }

    #[test]
    fn only_the_best_part_of_a_name_qualified_by_the_series_is_chosen() {
        let query = NameQuery::new("Asuna Yuuki", Some("Sword Art Online"));
        let candidates = vec![
            tag("yuuki_(sword_art_online)", 3000, TagCategory::Character),
            tag("asuna_(sword_art_online)", 9000, TagCategory::Character),
            tag("yuuki_asuna", 40, TagCategory::Character),
        ];
        assert_eq!(
            all_chosen(&query, candidates),
            ["asuna_(sword_art_online)", "yuuki_asuna"]
        );
    }

    #[test]
    fn at_most_three_tags_are_chosen_the_most_used_first() {
        let query = NameQuery::new("Anya Forger", Some("Spy x Family"));
        let candidates = vec![
            tag("anya_forger", 10, TagCategory::Character),
            tag("forger_anya", 20, TagCategory::Character),
            tag("anya_forger_(spy_x_family)", 30, TagCategory::Character),
            tag("forger_anya_(spy_x_family)", 40, TagCategory::Character),
        ];
        assert_eq!(
            all_chosen(&query, candidates),
            [
                "forger_anya_(spy_x_family)",
                "anya_forger_(spy_x_family)",
                "forger_anya"
            ]
        );
    }

    #[test]
    fn of_lesser_fits_only_the_best_is_chosen() {
        let without_series = NameQuery::new("Anya", None);
        assert_eq!(
            all_chosen(&without_series, anya_candidates()),
            ["anya_(other_work)"]
        );
        let parts = NameQuery::new("Rem Galleu", Some("Re:Zero"));
        let candidates = vec![
            tag("rem", 50, TagCategory::Character),
            tag("galleu", 40, TagCategory::Character),
        ];
        assert_eq!(all_chosen(&parts, candidates), ["rem"]);
    }

    #[test]
    fn the_series_beats_a_more_used_bare_name() {
        let query = NameQuery::new("Anya", Some("Spy x Family"));
        let candidates = vec![
            tag("anya", 50_000, TagCategory::Character),
            tag("anya_(spy_x_family)", 8000, TagCategory::Character),
        ];
        assert_eq!(
            chosen(&query, candidates).as_deref(),
            Some("anya_(spy_x_family)")
        );
    }

    #[test]
    fn without_a_series_a_bare_name_beats_a_namesake_of_some_work() {
        let query = NameQuery::new("Anya", None);
        let candidates = vec![
            tag("anya_(other_work)", 9000, TagCategory::Character),
            tag("anya", 300, TagCategory::Character),
        ];
        assert_eq!(chosen(&query, candidates).as_deref(), Some("anya"));
    }

    #[test]
    fn name_order_does_not_matter() {
        let query = NameQuery::new("Anya Forger", None);
        let candidates = vec![tag("forger_anya", 12, TagCategory::Character)];
        assert_eq!(chosen(&query, candidates).as_deref(), Some("forger_anya"));
    }

    #[test]
    fn without_a_series_the_most_used_same_name_character_wins() {
        let query = NameQuery::new("Anya", None);
        assert_eq!(
            chosen(&query, anya_candidates()).as_deref(),
            Some("anya_(other_work)")
        );
    }

    #[test]
    fn an_alias_of_the_full_name_wins_even_with_other_words() {
        let query = NameQuery::new("Yor Forger", Some("Spy x Family"));
        let candidates = vec![
            tag("yor_briar", 7000, TagCategory::Character),
            tag("yorha_no._2_type_b", 90000, TagCategory::Character),
        ];
        let discovery = choose(&query, candidates, &["yor_briar".to_string()]);
        assert_eq!(discovery.chosen[0].name, "yor_briar");
    }

    #[test]
    fn a_character_that_exists_nowhere_chooses_nothing() {
        let query = NameQuery::new("Nobody Atall", Some("Nothing"));
        let candidates = vec![tag("nobody_(other)", 5, TagCategory::Character)];
        assert_eq!(chosen(&query, candidates), None);
    }

    #[test]
    fn a_lone_first_name_is_chosen_only_as_a_character_tag() {
        let query = NameQuery::new("Rem Galleu", Some("Re:Zero"));
        let general = vec![tag("rem", 50, TagCategory::General)];
        let character = vec![tag("rem", 50, TagCategory::Character)];
        assert_eq!(chosen(&query, general), None);
        assert_eq!(chosen(&query, character).as_deref(), Some("rem"));
    }

    #[test]
    fn the_series_tag_is_rejected_even_where_the_site_does_not_call_it_a_copyright() {
        // A work named like its hero: an uncategorised series tag would be the bare name.
        let query = NameQuery::new("Bayonetta", Some("Bayonetta"));
        for category in [TagCategory::General, TagCategory::Other] {
            let candidates = vec![tag("bayonetta", 9000, category)];
            assert_eq!(chosen(&query, candidates), None, "{category:?}");
        }
    }

    #[test]
    fn a_character_named_like_its_series_is_still_found() {
        let query = NameQuery::new("Kirby", Some("Kirby"));
        let candidates = vec![
            tag("kirby_(series)", 30_000, TagCategory::Copyright),
            tag("kirby", 20_000, TagCategory::Character),
        ];
        assert_eq!(chosen(&query, candidates).as_deref(), Some("kirby"));
    }

    #[test]
    fn empty_tags_are_never_chosen() {
        let query = NameQuery::new("Anya Forger", None);
        let candidates = vec![tag("anya_forger", 0, TagCategory::Character)];
        assert_eq!(chosen(&query, candidates), None);
    }

    #[test]
    fn user_text_loses_its_wildcards_and_keeps_its_words() {
        let query = NameQuery::new("  Anya*&limit=1000 %_forger? ", Some("a#b?c=d"));
        assert_eq!(query.lookup_words(), vec!["anya&limit=1000", "forger"]);
        assert_eq!(query.full_tag().as_deref(), Some("anya&limit=1000_forger"));
        assert!(!NameQuery::new("*%?", None).is_searchable());
    }

    #[test]
    fn qualifiers_split_including_nested_variants() {
        assert_eq!(
            split_qualifiers("anya_(spy_x_family)"),
            ("anya", vec!["spy_x_family"])
        );
        assert_eq!(
            split_qualifiers("asuna_(bunny)_(blue_archive)"),
            ("asuna", vec!["bunny", "blue_archive"])
        );
        assert_eq!(split_qualifiers("hatsune_miku"), ("hatsune_miku", vec![]));
    }
}
