/** Every workflow the workers run; the bundle entry point. */
export { sampleSolutions, sampleSolutionsProgress } from './sample-solutions.js';
