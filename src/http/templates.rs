//! The MiniJinja environment: every template under `templates/`, embedded into the binary at
//! build time (so the release binary runs from any directory), auto-escaping on (all names end
//! in `.html`).

use minijinja::Environment;

/// The template environment, shared by every request.
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// Loads the embedded templates.
    pub fn new() -> Self {
        let mut env = Environment::new();
        minijinja_embed::load_templates!(&mut env);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        Self { env }
    }

    /// Renders `name` with `context`.
    pub fn render(
        &self,
        name: &str,
        context: minijinja::Value,
    ) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(context)
    }
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}
