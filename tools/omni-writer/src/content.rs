//! The simulated world: prompts, models, errors and article text. Everything here is drawn
//! from the pipeline's seeded generator; nothing calls a model.

use std::collections::BTreeMap;

use omni_domain::GenerationConfig;

use crate::rng::Rng;

/// Marks every simulated article, so nobody mistakes it for model output.
pub const SIMULATED_BANNER: &str = "[SIMULATED ARTICLE: omni-writer generated this text from a seed; no language model was called]";

const TOPICS: &[&str] = &[
    "energia solar no Nordeste",
    "a história do café no Brasil",
    "programação em Rust",
    "bancos de dados orientados a eventos",
    "a Amazônia e o clima",
    "futebol de várzea",
    "cozinha mineira",
    "o mercado de trabalho remoto",
    "inteligência artificial na saúde",
    "mobilidade urbana em São Paulo",
    "o samba e suas origens",
    "educação financeira para jovens",
    "agricultura familiar",
    "segurança da informação",
    "turismo sustentável",
    "a economia circular",
    "literatura de cordel",
    "startups de tecnologia",
    "reciclagem de eletrônicos",
    "a vida nas grandes cidades",
];

const ANGLES: &[&str] = &[
    "um público iniciante",
    "dados recentes",
    "exemplos práticos",
    "os desafios dos próximos anos",
    "uma perspectiva histórica",
];

const SENTENCES: &[&str] = &[
    "Nos últimos anos, o tema ganhou espaço no debate público e nas decisões de empresas.",
    "Especialistas apontam que a mudança depende tanto de tecnologia quanto de políticas públicas.",
    "Os números mostram um crescimento constante, ainda que desigual entre as regiões do país.",
    "Para quem está começando, o mais importante é entender os conceitos antes das ferramentas.",
    "Há, porém, obstáculos: custo, formação de pessoas e a falta de dados confiáveis.",
    "Casos de sucesso mostram que pequenas iniciativas locais podem ter grande impacto.",
    "O futuro próximo deve trazer mais integração entre pesquisa, mercado e sociedade.",
    "Em resumo, o assunto merece atenção de leitores, gestores e estudantes.",
];

/// Generation errors a model gateway returns: (error type, message).
pub const GENERATION_ERRORS: &[(&str, &str)] = &[
    ("TimeoutError", "API timeout after 30s"),
    (
        "RateLimitError",
        "429 Too Many Requests: rate limit exceeded",
    ),
    ("APIError", "502 Bad Gateway from the model gateway"),
    ("ConnectionError", "connection reset by peer"),
];

/// Users on whose behalf pipelines run.
pub const USERS: &[&str] = &[
    "user-ana",
    "user-bruno",
    "user-carla",
    "user-diego",
    "user-eva",
];

/// The rules every prompt is checked against.
pub const VALIDATION_RULES: &[&str] = &["length", "content", "language"];

/// A pipeline's generation settings.
pub fn generation_config(rng: &mut Rng) -> GenerationConfig {
    GenerationConfig {
        model_type: (*rng.pick(&["openai", "deepseek"])).to_string(),
        temperature: *rng.pick(&[0.5, 0.7, 0.9]),
        max_tokens: *rng.pick(&[2048, 4096, 8192]),
        language: (*rng.pick(&["pt-BR", "pt-BR", "en-US", "es-ES"])).to_string(),
    }
}

/// The simulated model's name for a model family.
pub fn model_name(model_type: &str) -> String {
    match model_type {
        "deepseek" => "deepseek-chat (simulated)".to_string(),
        _ => "gpt-4o-mini (simulated)".to_string(),
    }
}

/// A prompt: its topic and its text.
pub fn prompt(rng: &mut Rng) -> (&'static str, String) {
    let topic = *rng.pick(TOPICS);
    let angle = *rng.pick(ANGLES);
    (
        topic,
        format!("Escreva um artigo sobre {topic}, com foco em {angle}."),
    )
}

/// The cache key of a prompt under a configuration (16 hex digits of a BLAKE3 hash).
pub fn cache_key(prompt_text: &str, config: &GenerationConfig) -> String {
    let mut hasher = blake3::Hasher::new();
    for part in [
        prompt_text,
        config.model_type.as_str(),
        config.language.as_str(),
    ] {
        hasher.update(part.as_bytes());
        hasher.update(&[0]);
    }
    hasher.update(&config.max_tokens.to_be_bytes());
    let hash = hasher.finalize();
    hash.as_bytes()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A simulated article about `topic`: the banner, a title and a few sentences.
pub fn article(rng: &mut Rng, topic: &str) -> (String, BTreeMap<String, String>) {
    let sentences = rng.between(3, 7);
    let mut content = format!("{SIMULATED_BANNER}\n\n# {topic}\n\n");
    for _ in 0..sentences {
        let sentence: &&str = rng.pick(SENTENCES);
        content.push_str(sentence);
        content.push(' ');
    }
    let words = content.split_whitespace().count();
    let metadata = BTreeMap::from([
        ("simulated".to_string(), "true".to_string()),
        ("topic".to_string(), topic.to_string()),
        ("words".to_string(), words.to_string()),
    ]);
    (content, metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn articles_say_they_are_simulated() {
        let mut rng = Rng::new(1, 2);
        let (content, metadata) = article(&mut rng, "Rust");
        assert!(content.starts_with(SIMULATED_BANNER));
        assert_eq!(metadata["simulated"], "true");
        assert!(model_name("openai").contains("simulated"));
    }

    #[test]
    fn cache_keys_depend_on_prompt_and_config() {
        let mut rng = Rng::new(1, 3);
        let config = generation_config(&mut rng);
        let a = cache_key("a", &config);
        assert_eq!(a.len(), 16);
        assert_eq!(a, cache_key("a", &config));
        assert_ne!(a, cache_key("b", &config));
    }
}
