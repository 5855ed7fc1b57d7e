"""Recipe: voter verification, Excel → HTTP lookup → Excel (README "Recipes")."""
