//! Embeds `templates/` into the binary (minijinja-embed) and rebuilds when a template changes.

fn main() {
    minijinja_embed::embed_templates!("templates");
}
