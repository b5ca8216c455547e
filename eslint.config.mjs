import tseslint from "typescript-eslint"

const timeAndRandom = [
  {
    selector: "MemberExpression[object.name='Date'][property.name='now']",
    message: "Read time from Effect's Clock so that TestClock drives it."
  },
  {
    selector: "NewExpression[callee.name='Date'][arguments.length=0]",
    message: "Read time from Effect's Clock so that TestClock drives it."
  },
  {
    selector: "MemberExpression[object.name='Math'][property.name='random']",
    message: "Draw randomness from Effect's Random so that TestRandom drives it."
  },
  {
    selector: "CallExpression[callee.name=/^(setTimeout|setInterval|setImmediate)$/]",
    message: "Sleep with Effect.sleep or a Schedule so that TestClock drives it."
  }
]

export default tseslint.config(
  {
    ignores: ["**/node_modules/**", "**/dist/**", "**/build/**", "bench/results/**", "docs/jsdoc-examples/**"]
  },
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": ["error", { fixStyle: "separate-type-imports" }],
      "@typescript-eslint/no-namespace": "off",
      "@typescript-eslint/no-empty-object-type": "off"
    }
  },
  {
    // Library code: time, randomness and timers come from Effect's services,
    // and modules import effect's modules, never its barrel.
    files: ["packages/*/src/**/*.ts"],
    rules: {
      "no-restricted-syntax": ["error", ...timeAndRandom],
      "no-restricted-imports": ["error", {
        paths: [{ name: "effect", message: "Import the module, e.g. effect/Effect, not the barrel." }]
      }]
    }
  }
)
