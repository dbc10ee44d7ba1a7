//! How a CV is presented: the content turned into plain view structs (headings, dates, links,
//! paragraphs, bullets) that templates lay out. Doing it here keeps the templates simple and
//! lets the rules — such as "only http(s) URLs become links" — be tested directly.

use domain::{Cv, CvContent, Entry, FieldKind, Section, BASICS_FIELDS};
use serde::Serialize;

/// A link, only ever to an http(s) URL.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Link {
    pub href: String,
    pub text: String,
}

/// A URL from user data: a link if it is http(s), plain text otherwise.
fn link(url: &str) -> (Option<Link>, Option<String>) {
    if url.is_empty() {
        (None, None)
    } else if domain::is_web_url(url) {
        let text = url
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        (
            Some(Link {
                href: url.to_owned(),
                text,
            }),
            None,
        )
    } else {
        (None, Some(url.to_owned()))
    }
}

/// One entry, ready to lay out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntryView {
    pub id: String,
    pub heading: String,
    pub subheading: String,
    pub dates: String,
    pub location: String,
    pub link: Option<Link>,
    /// A URL that is not http(s): shown as text, never as a link.
    pub unlinked_url: Option<String>,
    pub paragraphs: Vec<String>,
    pub bullets: Vec<String>,
    pub tags: Vec<String>,
}

/// A section with its entries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SectionView {
    pub name: &'static str,
    pub title: &'static str,
    pub entries: Vec<EntryView>,
}

/// The whole CV.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CvView {
    pub title: String,
    pub name: String,
    pub label: String,
    pub email: String,
    pub phone: String,
    pub link: Option<Link>,
    pub unlinked_url: Option<String>,
    pub location: String,
    pub summary: Vec<String>,
    pub sections: Vec<SectionView>,
    pub version: u64,
    pub archived: bool,
    pub is_empty: bool,
}

fn date_range(entry: &Entry) -> String {
    let (start, end) = (entry.text("startDate"), entry.text("endDate"));
    match (start.is_empty(), end.is_empty()) {
        (false, false) => format!("{start} – {end}"),
        (false, true) => format!("{start} – present"),
        (true, false) => end.to_owned(),
        (true, true) => ["date", "releaseDate"]
            .iter()
            .map(|field| entry.text(field))
            .find(|text| !text.is_empty())
            .unwrap_or("")
            .to_owned(),
    }
}

fn join(parts: &[&str], separator: &str) -> String {
    parts
        .iter()
        .filter(|part| !part.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(separator)
}

fn paragraphs(text: &str) -> Vec<String> {
    text.split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

fn entry_view(section: Section, entry: &Entry) -> EntryView {
    let text = |name: &str| entry.text(name);
    let subheading = match section {
        Section::Work | Section::Volunteer => text("position").to_owned(),
        Section::Education => join(&[text("studyType"), text("area")], ", "),
        Section::Skills => text("level").to_owned(),
        Section::Languages => text("fluency").to_owned(),
        Section::Publications => text("publisher").to_owned(),
        Section::Awards => text("awarder").to_owned(),
        Section::Certificates => text("issuer").to_owned(),
        Section::Profiles => text("username").to_owned(),
        Section::Projects => join(&[text("entity"), text("type")], " · "),
        Section::Interests | Section::References => String::new(),
    };
    let mut body = Vec::new();
    for name in ["description", "summary", "reference"] {
        if section == Section::Work && name == "description" {
            continue;
        }
        body.extend(paragraphs(text(name)));
    }
    if section == Section::Education && !text("score").is_empty() {
        body.push(format!("Score: {}", text("score")));
    }
    let mut bullets = Vec::new();
    let mut tags = Vec::new();
    for spec in section.fields() {
        if spec.kind != FieldKind::List {
            continue;
        }
        let items = entry.list(spec.name);
        if matches!(spec.name, "keywords" | "roles") {
            tags.extend(items.iter().cloned());
        } else {
            bullets.extend(items.iter().cloned());
        }
    }
    let (link, unlinked_url) = link(text("url"));
    let location = if section == Section::Work {
        join(&[text("location"), text("description")], " · ")
    } else {
        text("location").to_owned()
    };
    EntryView {
        id: entry.id.to_string(),
        heading: text(section.title_field()).to_owned(),
        subheading,
        dates: date_range(entry),
        location,
        link,
        unlinked_url,
        paragraphs: body,
        bullets,
        tags,
    }
}

/// The view of a CV's title and content.
pub fn view(title: &str, content: &CvContent, version: u64, archived: bool) -> CvView {
    let basic = |name: &str| content.basic(name).to_owned();
    let (link, unlinked_url) = link(content.basic("url"));
    let location = join(
        &[
            content.basic("address"),
            content.basic("postalCode"),
            content.basic("city"),
            content.basic("region"),
            content.basic("countryCode"),
        ],
        ", ",
    );
    let sections: Vec<SectionView> = Section::ALL
        .into_iter()
        .filter(|section| !content.entries(*section).is_empty())
        .map(|section| SectionView {
            name: section.as_str(),
            title: section.title(),
            entries: content
                .entries(section)
                .iter()
                .map(|entry| entry_view(section, entry))
                .collect(),
        })
        .collect();
    let is_empty = sections.is_empty()
        && BASICS_FIELDS
            .iter()
            .all(|f| content.basic(f.name).is_empty());
    CvView {
        title: title.to_owned(),
        name: basic("name"),
        label: basic("label"),
        email: basic("email"),
        phone: basic("phone"),
        link,
        unlinked_url,
        location,
        summary: paragraphs(content.basic("summary")),
        sections,
        version,
        archived,
        is_empty,
    }
}

/// The view of a CV state.
pub fn of(cv: &Cv) -> CvView {
    view(&cv.title, &cv.content, cv.version, cv.archived)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use domain::{EntryFields, FieldValue};
    use uuid::Uuid;

    use super::*;

    fn content_with_work(fields: &[(&str, &str)]) -> CvContent {
        let fields: EntryFields = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), FieldValue::Text((*v).to_owned())))
            .collect();
        CvContent {
            basics: BTreeMap::from([("url".to_owned(), "javascript:alert(1)".to_owned())]),
            sections: BTreeMap::from([(
                Section::Work,
                vec![Entry {
                    id: Uuid::nil(),
                    fields,
                }],
            )]),
        }
    }

    #[test]
    fn javascript_urls_never_become_links() {
        let content = content_with_work(&[("name", "Evil"), ("url", "javascript:alert(1)")]);
        let view = view("T", &content, 1, false);
        assert_eq!(view.link, None);
        assert_eq!(view.unlinked_url.as_deref(), Some("javascript:alert(1)"));
        let entry = &view.sections[0].entries[0];
        assert_eq!(entry.link, None);
        assert_eq!(entry.unlinked_url.as_deref(), Some("javascript:alert(1)"));
    }

    #[test]
    fn http_urls_become_links_with_short_text() {
        let content = content_with_work(&[("name", "Hooli"), ("url", "https://hooli.example/")]);
        let entry = &view("T", &content, 1, false).sections[0].entries[0];
        assert_eq!(
            entry.link,
            Some(Link {
                href: "https://hooli.example/".into(),
                text: "hooli.example".into()
            })
        );
    }

    #[test]
    fn an_open_ended_job_reads_present() {
        let content = content_with_work(&[("name", "Hooli"), ("startDate", "2020-01")]);
        assert_eq!(
            view("T", &content, 1, false).sections[0].entries[0].dates,
            "2020-01 – present"
        );
    }

    #[test]
    fn empty_sections_are_not_shown() {
        let view = view("T", &CvContent::default(), 1, false);
        assert!(view.sections.is_empty());
        assert!(view.is_empty);
    }
}
