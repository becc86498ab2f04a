//! cloud-init user data rendered from a MiniJinja template.

use minijinja::{Environment, UndefinedBehavior, context};

/// Renders `source` for one server: `name` (the server's name), `index` (its 0-based place
/// in the group when it was created) and `group`. An unknown variable is an error, so a typo
/// shows when the policy is checked rather than as an empty string on a server.
pub(crate) fn render(
    source: &str,
    name: &str,
    index: usize,
    group: &str,
) -> Result<String, String> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // cloud-init files end with a newline; keep it.
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()
            .map_err(|e| format!("user data template: {e}"))?,
    );
    env.render_str(
        source,
        context! { name => name, index => index, group => group },
    )
    .map_err(|e| format!("user data template: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_name_index_and_group() {
        let out = render(
            "#cloud-config\nhostname: {{ name }}\nrunner: {{ group }}-{{ index + 1 }}\n",
            "web-x1",
            2,
            "web",
        )
        .unwrap();
        assert_eq!(out, "#cloud-config\nhostname: web-x1\nrunner: web-3\n");
    }

    #[test]
    fn an_unknown_variable_or_bad_syntax_is_an_error() {
        assert!(
            render("{{ nmae }}", "a", 0, "g")
                .unwrap_err()
                .contains("undefined")
        );
        assert!(render("{% if %}", "a", 0, "g").is_err());
    }
}
